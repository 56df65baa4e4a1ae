"""Old import path of :mod:`audiograph.twotower.vectors` (kept for existing imports)."""

from audiograph.twotower.vectors import align_embeddings, history_means, text_vectors

__all__ = ["align_embeddings", "history_means", "text_vectors"]
