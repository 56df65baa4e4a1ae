"""The tiny generative model the Semantic ID tests train (imported by the test modules)."""

from audiograph.semantic_ids.config import GenerativeConfig

TINY_T5 = GenerativeConfig(
    d_model=64,
    d_ff=128,
    layers=1,
    heads=2,
    dropout=0.0,
    history=4,
    batch_size=32,
    lr=3e-3,
    warmup_steps=5,
    epochs=100,
    val_examples=0,
)
"""Memorises a 30-item catalog in seconds on a CPU; nothing held out for validation."""
