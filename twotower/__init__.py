"""Stage 4: the user-decoupled two-tower model of 2T-HGNN on top of the HGNN embeddings.

``train_twotower`` trains a run; ``user_item_vectors`` is what the evaluation harness calls;
``export_vectors``, ``recommend`` and ``score_all_users`` serve a trained run. The names are
loaded on first use, so that serving and evaluation never import the trainer.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "TwoTowerConfig": "audiograph.twotower.config",
    "train_twotower": "audiograph.twotower.train",
    "export_vectors": "audiograph.twotower.export",
    "recommend": "audiograph.twotower.export",
    "score_all_users": "audiograph.twotower.export",
    "user_item_vectors": "audiograph.twotower.export",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'audiograph.twotower' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)
