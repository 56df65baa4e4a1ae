"""Stage 4: the user-decoupled two-tower model of 2T-HGNN on top of the HGNN embeddings.

``train_twotower`` trains a run; ``user_item_vectors`` is what the evaluation harness calls;
``export_vectors``, ``recommend`` and ``score_all_users`` serve a trained run.
"""

from audiograph.twotower.export import export_vectors, recommend, score_all_users, user_item_vectors
from audiograph.twotower.train import TwoTowerConfig, train_twotower

__all__ = [
    "TwoTowerConfig",
    "export_vectors",
    "recommend",
    "score_all_users",
    "train_twotower",
    "user_item_vectors",
]
