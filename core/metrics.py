"""Ranking metrics, one definition for every stage (HGNN validation, two-tower validation
and evaluation, generative Recall@k).

Every metric is computed from a *hit matrix*: ``hit[u, j]`` is True when the ``j``-th
ranked item of input ``u`` is relevant (best first; padding is False), with ``n_rel[u]``
relevant items in all. Per input, with ``h = hit[:, :k]``:

* ``hr`` — 1 if any of the top ``k`` is relevant;
* ``recall`` — ``h.sum() / n_rel`` (0 when ``n_rel`` is 0);
* ``ndcg`` — ``sum_j h_j / log2(j + 2)`` over the ideal DCG of ``min(n_rel, k)`` hits;
* ``rr`` — ``1 / (rank of the first hit + 1)`` over the whole row (0 without a hit): its
  mean is the MRR.

Scores are turned into ranks, and ranks into hits, by :mod:`audiograph.core.ranking`
(:func:`hits_of_ranks`): ties count against the relevant item there and a NaN score is no
candidate, so a model that scores everything the same, or NaN, scores about 0, not 1.
"""

from __future__ import annotations

import numpy as np

KEYS = ("hr", "recall", "ndcg", "rr")


def hit_metrics(hit: np.ndarray, n_rel: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-input ``hr``, ``recall``, ``ndcg`` at ``k`` and ``rr`` (float64 ``[U]`` each)
    of the bool hit matrix ``hit`` ``[U, n]`` with ``n_rel`` ``[U]`` relevant items."""
    hit = np.asarray(hit, dtype=bool)
    n_rel = np.asarray(n_rel).astype(np.int64)
    kk = min(k, hit.shape[1])
    hk = hit[:, :kk]
    discount = 1.0 / np.log2(np.arange(2, kk + 2))
    idcg = np.concatenate([[1.0], np.cumsum(discount)])  # idcg[0] only guards n_rel = 0
    has = n_rel > 0
    safe = np.where(has, n_rel, 1)
    first = np.where(hit.any(1), hit.argmax(1), -1)
    return {
        "hr": hk.any(1).astype(np.float64),
        "recall": np.where(has, hk.sum(1) / safe, 0.0),
        "ndcg": np.where(has, (hk * discount).sum(1) / idcg[np.minimum(safe, kk)], 0.0),
        "rr": np.where(first >= 0, 1.0 / (np.maximum(first, 0) + 1), 0.0),
    }


def hits_of_lists(ranked: list[list[int]], relevant: list[set[int]], k: int) -> np.ndarray:
    """The hit matrix ``[N, k]`` of ranked lists (repeats of an item count once) against
    sets of relevant items."""
    hit = np.zeros((len(ranked), k), dtype=bool)
    for u, (row, rel) in enumerate(zip(ranked, relevant, strict=True)):
        seen: set[int] = set()
        for j, item in enumerate(row[:k]):
            hit[u, j] = item in rel and item not in seen
            seen.add(item)
    return hit


def hits_of_ranks(
    rank: np.ndarray, width: int, rows: np.ndarray | None = None, n_rows: int | None = None
) -> np.ndarray:
    """The hit matrix ``[n_rows, width]`` of relevant items at 0-based ``rank`` ``[P]``
    (ranks ``>= width`` are no hit): item ``p`` belongs to input ``rows[p]`` (None: one
    relevant item per input, ``n_rows = P``)."""
    rank = np.asarray(rank)
    rows = np.arange(len(rank)) if rows is None else np.asarray(rows)
    hit = np.zeros((len(rank) if n_rows is None else n_rows, width), dtype=bool)
    inside = rank < width
    hit[rows[inside], rank[inside]] = True
    return hit


__all__ = ["KEYS", "hit_metrics", "hits_of_lists", "hits_of_ranks"]
