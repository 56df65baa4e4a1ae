"""Old import path of :mod:`audiograph.twotower.serve` (kept for existing imports)."""

from audiograph.twotower.serve import (
    export_user_vectors,
    export_vectors,
    load_run,
    recommend,
    score_all_users,
    user_item_vectors,
)

__all__ = [
    "export_user_vectors",
    "export_vectors",
    "load_run",
    "recommend",
    "score_all_users",
    "user_item_vectors",
]
