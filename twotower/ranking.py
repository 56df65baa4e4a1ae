"""Ranking with a two-tower model: exact top-k by dot product (user chunks, exclusions,
allowed items) and the validation recall@k of a model on tower inputs."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from audiograph.core.metrics import hit_metrics
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
        ``(scores [U, k'], items [U, k'])`` with ``k' = min(k, I)``, best first; slots
        with no candidate left (or a NaN score) have score ``-inf``.
    """
    k = min(k, item_vecs.shape[0])
    if exclude is not None:
        order = torch.argsort(exclude[0], stable=True)
        ex_u, ex_i = exclude[0][order].to(user_vecs.device), exclude[1][order].to(user_vecs.device)
    scores, index = [], []
    for lo in range(0, user_vecs.shape[0], chunk):
        hi = min(lo + chunk, user_vecs.shape[0])
        s = user_vecs[lo:hi] @ item_vecs.T
        s.masked_fill_(s.isnan(), float("-inf"))  # NaN ranks worst, never first
        if allowed is not None:
            s[:, ~allowed] = float("-inf")
        if exclude is not None:
            a, b = torch.searchsorted(ex_u, torch.tensor([lo, hi], device=ex_u.device)).tolist()
            s[ex_u[a:b] - lo, ex_i[a:b]] = float("-inf")
        top = torch.topk(s, k, dim=1)
        scores.append(top.values)
        index.append(top.indices)
    if not scores:
        return torch.zeros(0, k, device=user_vecs.device), torch.zeros(0, k, dtype=torch.long)
    return torch.cat(scores), torch.cat(index)


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
    """Mean over users of ``|top-k ∩ labels| / |labels|``; ``user``/``item`` are tower
    inputs ``(cat, dense)``, ``labels``/``exclude`` are ``(user_row, item_index)`` pairs."""
    model.eval()
    labels = (labels[0].to(item[0].device), labels[1].to(item[0].device))
    iv = torch.cat([model.item(c, d) for c, d in _batches(*item, 65536)])
    uv = torch.cat([model.user(c, d) for c, d in _batches(*user, 65536)])
    scores, idx = top_k(uv, iv, k, exclude, allowed)
    n_items = iv.shape[0]
    hit = (
        torch.isin(
            idx + torch.arange(len(uv), device=idx.device)[:, None] * n_items,
            labels[0] * n_items + labels[1],
        )
        & scores.isfinite()
    )
    n_rel = torch.bincount(labels[0], minlength=len(uv))
    recall = hit_metrics(hit.cpu().numpy(), n_rel.cpu().numpy(), k)["recall"]
    return float(recall.mean()) if len(uv) else 0.0


def _batches(
    cat: torch.Tensor, dense: torch.Tensor, size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for lo in range(0, cat.shape[0], size):
        yield cat[lo : lo + size], dense[lo : lo + size]
