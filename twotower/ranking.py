"""Ranking with a two-tower model: exact top-k by dot product (user chunks, exclusions,
allowed items) and the validation recall@k of a model on tower inputs, both by the tie
rules of :mod:`audiograph.core.ranking` (lists: equal scores by item index; recall: ties
count against the label)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from audiograph.core.metrics import hit_metrics, hits_of_ranks
from audiograph.core.ranking import rank_items
from audiograph.twotower.model import TwoTower


@torch.inference_mode()
def top_k(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    k: int,
    exclude: tuple[torch.Tensor, torch.Tensor] | None = None,
    allowed: torch.Tensor | None = None,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` items per user by dot product, in user chunks.

    Args:
        user_vecs: ``[U, d]``; item_vecs: ``[I, d]`` (same device).
        exclude: ``(user_row, item_index)`` pairs, each ``[E]``, never recommended.
        allowed: bool ``[I]``; only these items are candidates.

    Returns:
        ``(scores [U, k'], items [U, k'])`` with ``k' = min(k, I)``, best first, equal
        scores by item index; slots with no candidate left (or a NaN score) have score
        ``-inf``.
    """
    ranked = rank_items(user_vecs, item_vecs, k, exclude=exclude, allowed=allowed, chunk=chunk)
    return ranked.scores, ranked.items


@torch.inference_mode()
def recall_at_k(
    model: TwoTower,
    user: tuple[torch.Tensor, torch.Tensor],
    item: tuple[torch.Tensor, torch.Tensor],
    labels: tuple[torch.Tensor, torch.Tensor],
    exclude: tuple[torch.Tensor, torch.Tensor],
    allowed: torch.Tensor | None,
    k: int = 10,
) -> float:
    """Mean over the users with labels of ``|top-k ∩ labels| / |labels|``, a label in the
    top k when fewer than ``k`` other candidates score at least as high (ties count
    against it: equal scores for all recall nothing); ``user``/``item`` are tower inputs
    ``(cat, dense)``, ``labels`` (distinct) and ``exclude`` ``(user_row, item_index)``
    pairs."""
    model.eval()
    iv = torch.cat([model.item(c, d) for c, d in _batches(*item, 65536)])
    uv = torch.cat([model.user(c, d) for c, d in _batches(*user, 65536)])
    ranks = rank_items(uv, iv, 0, labels, k, exclude=exclude, allowed=allowed).ranks
    rows = labels[0].cpu().numpy()
    n_rel = torch.bincount(labels[0].cpu(), minlength=len(uv)).numpy()
    hit = hits_of_ranks(ranks.cpu().numpy(), k, rows, len(uv))
    recall = hit_metrics(hit, n_rel, k)["recall"][n_rel > 0]
    return float(recall.mean()) if len(recall) else 0.0


def _batches(
    cat: torch.Tensor, dense: torch.Tensor, size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for lo in range(0, cat.shape[0], size):
        yield cat[lo : lo + size], dense[lo : lo + size]
