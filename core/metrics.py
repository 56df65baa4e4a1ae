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

Scores are turned into hits so that NaN ranks worst (:func:`positive_ranks`; the
two-tower's top-k ranks NaN scores as no candidate): diverged weights score 0, not 1.
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


def positive_ranks(pos: np.ndarray, neg: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """0-based rank of each input's one relevant item (score ``pos`` ``[E]``) among its
    candidates (scores ``neg`` ``[E, C]``, ``valid`` ``[E, C]`` those that count): the
    number of valid candidates scored above it. A NaN score ranks worst: a NaN candidate
    never beats the relevant item, and a NaN relevant item gets rank ``C + 1`` (no hit
    within ``1 + C``), so a model scoring NaN never looks perfect."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    rank = ((neg > pos[:, None]) & np.asarray(valid, dtype=bool)).sum(1)
    return np.where(np.isnan(pos), neg.shape[1] + 1, rank)


def hits_of_ranks(rank: np.ndarray, width: int) -> np.ndarray:
    """The hit matrix ``[E, width]`` of inputs with one relevant item at 0-based ``rank``
    (ranks ``>= width`` give an empty row)."""
    rank = np.asarray(rank)
    hit = np.zeros((len(rank), width), dtype=bool)
    inside = rank < width
    hit[np.flatnonzero(inside), rank[inside]] = True
    return hit


__all__ = ["KEYS", "hit_metrics", "hits_of_lists", "hits_of_ranks", "positive_ranks"]
