"""Settings of the tiny models the pipeline tests train (imported by the test modules)."""

TINY_HGNN = {
    "hidden": 8,
    "fanout": [3, 2],
    "batch_size": 64,
    "prefetch": 0,
    "eval_candidates": 10,
    "max_val_edges": 50,
    "max_epoch_edges": 2000,
}
"""An HGNN that trains in seconds on the synthetic catalogs of the tests."""
