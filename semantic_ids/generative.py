"""Moved to :mod:`audiograph.semantic_ids.generative_train` (the training of the generative
model; its answers are :mod:`audiograph.semantic_ids.generate`). Kept so that existing
imports keep working."""

from audiograph.semantic_ids.config import GenerativeConfig
from audiograph.semantic_ids.generative_train import build_model, sid_loss, train_generative

__all__ = ["GenerativeConfig", "build_model", "sid_loss", "train_generative"]
