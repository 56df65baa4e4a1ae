"""Moved to :mod:`audiograph.semantic_ids.assign` (it assigns Semantic IDs to items; it
never tokenized text). Kept so that existing imports keep working."""

from audiograph.semantic_ids.assign import CODES, load_semantic_ids, semantic_ids

__all__ = ["CODES", "load_semantic_ids", "semantic_ids"]
