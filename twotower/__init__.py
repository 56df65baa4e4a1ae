"""Stage 4: the user-decoupled two-tower model of 2T-HGNN on top of the HGNN embeddings.

``train_twotower`` trains a run; ``user_item_vectors`` is what the evaluation harness calls;
``export_vectors``, ``recommend`` and ``score_all_users`` serve a trained run
(:mod:`audiograph.twotower.serve`). The names are loaded on first use, so that serving and
evaluation never import the trainer.
"""

from audiograph.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "TwoTowerConfig": "audiograph.twotower.config",
        "EvaluationConfig": "audiograph.twotower.config",
        "train_twotower": "audiograph.twotower.train",
        "evaluate_run": "audiograph.twotower.evaluate",
        "export_vectors": "audiograph.twotower.serve",
        "recommend": "audiograph.twotower.serve",
        "score_all_users": "audiograph.twotower.serve",
        "user_item_vectors": "audiograph.twotower.serve",
    },
)
