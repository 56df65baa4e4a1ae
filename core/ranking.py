"""Ranking by score, with the one tie rule of every stage: top-k lists and the ranks of
relevant items (two-tower serving, validation and evaluation, LightGCN tuning, HGNN
link validation, nearest neighbours).

Two outputs, each with its rule:

* **Lists** (:func:`top_k`, :func:`ordered`; what is shown: recommendations, neighbours,
  a model's coverage): candidates by score, descending; equal scores by index, the lower
  first. The same list on any device and for any chunking.
* **Ranks of relevant items** (:func:`relevant_ranks`, :func:`positive_ranks`; what every
  hit rate, recall, nDCG and MRR is computed from): ties count *against* the relevant
  item. Among equal scores the candidates that are not relevant come first, then the
  relevant ones by index. With one relevant item its 0-based rank is the number of other
  candidates scoring at least as high, so a model that scores everything the same ranks
  it last (MRR about ``1 / N``, no hit at ``k < N``). With several relevant items the
  ranks are their places in the worst list a tie order can give (tied relevant items do
  not push each other out: that would score below every possible list).

Candidates: a NaN or ``-inf`` score is no candidate (excluded and not allowed items get
``-inf``). In a list such slots come last, with score ``-inf`` (only when fewer than ``k``
candidates are left); a relevant item without a finite score has no rank (no hit).

Integer scores (e.g. popularity counts as float32, exact below ``2**24``) tie only when
equal, so a popularity ranking loses nothing but its ties among equally popular items.

Chunking never changes a result: :func:`rank_items` scores users x items in user chunks
(with each user's excluded items, the allowed items and a fallback score row);
:func:`ordered` merges the lists of item chunks (e.g. :func:`audiograph.core.ann.search`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

NEG_INF = -math.inf


def _finite_or_neg_inf(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` with NaN as ``-inf`` (a copy only when there is a NaN)."""
    nan = scores.isnan()
    return scores.masked_fill(nan, NEG_INF) if bool(nan.any()) else scores


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``k`` list of each row of ``scores`` ``[B, C]`` → ``(values [B, k'],
    indices [B, k'])``, ``k' = min(k, C)``: by score, descending, equal scores by index
    (the lower first); NaN scores as ``-inf``."""
    return _top_k(_finite_or_neg_inf(scores), k)


def _top_k(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`top_k` of scores without NaN."""
    n_rows, n_cols = s.shape
    k = min(k, n_cols)
    if k <= 0 or n_rows == 0:
        empty = torch.zeros((n_rows, max(k, 0)), dtype=torch.long, device=s.device)
        return empty.to(s.dtype), empty
    vals, idx = torch.topk(s, min(k + 1, n_cols), dim=1)
    kth = vals[:, k - 1 : k]
    ragged = vals[:, k:].eq(kth).any(1)  # ties run past the cut: topk's pick is arbitrary
    vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    if bool(ragged.any()):  # there the tied items of the lowest index fill the slots left
        sub, cut = s[ragged], kth[ragged]
        take, tie = sub > cut, sub == cut
        need = k - torch.count_nonzero(take, 1)
        tie &= torch.cumsum(tie, 1, dtype=torch.int32) <= need[:, None]
        idx[ragged] = (take | tie).nonzero()[:, 1].view(-1, k)
        vals[ragged] = sub.gather(1, idx[ragged])
    return ordered(vals, idx, k)


def ordered(
    values: torch.Tensor, indices: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` of each row's ``(values [B, n], indices [B, n])`` candidates in list
    order (score descending, equal scores by index, NaN as ``-inf``); e.g. two top-k lists
    concatenated merge into the top-k list of their union."""
    values = _finite_or_neg_inf(values)
    by_index = torch.sort(indices, dim=1, stable=True).indices
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return values.gather(1, order), indices.gather(1, order)


def relevant_ranks(
    scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, width: int
) -> torch.Tensor:
    """Pessimistic 0-based ranks (module docstring) of the relevant pairs ``(rows [P],
    cols [P])`` (distinct) of ``scores`` ``[B, C]`` → int64 ``[P]``; a rank not below
    ``width``, or of an item without a finite score, is returned as ``width``.

    Cost: one ``topk(width)`` and a few elementwise passes over ``scores``, no sort of
    the rows."""
    return _relevant_ranks(_finite_or_neg_inf(scores), rows, cols, width)


def _relevant_ranks(
    s: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, width: int
) -> torch.Tensor:
    """:func:`relevant_ranks` of scores without NaN."""
    out = torch.full((len(rows),), width, dtype=torch.long, device=s.device)
    n_cols = s.shape[1]
    if len(rows) == 0 or n_cols == 0 or width <= 0:
        return out
    w = min(width, n_cols)
    top = torch.topk(s, w, dim=1).values  # [B, w], descending
    kth = top[:, -1]
    x = s[rows, cols]
    # candidates scoring >= x: all inside the top w where x > kth; at x == kth the ties
    # may run past it, so they are counted over the whole row
    at_least = torch.count_nonzero(top[rows] >= x[:, None], 1)
    at_cut = x == kth[rows]
    if bool(at_cut.any()):
        r = torch.unique(rows[at_cut])
        cut = torch.zeros_like(kth, dtype=torch.long)
        cut[r] = torch.count_nonzero(top[r] > kth[r, None], 1)
        cut[r] += torch.count_nonzero(s[r] == kth[r, None], 1)
        at_least = torch.where(at_cut, cut[rows], at_least)
    ranked = (x >= kth[rows]) & torch.isfinite(x)
    # relevant items tied with x at index >= cols (itself included) come after it
    order = torch.argsort(cols, stable=True)
    order = order[torch.argsort(x[order], stable=True)]
    order = order[torch.argsort(rows[order], stable=True)]
    rs, xs = rows[order], x[order]
    new = torch.ones(len(order), dtype=torch.bool, device=s.device)
    new[1:] = (rs[1:] != rs[:-1]) | (xs[1:] != xs[:-1])
    group = torch.cumsum(new.long(), 0) - 1
    last = torch.cumsum(torch.bincount(group), 0) - 1
    behind = torch.empty_like(order)
    behind[order] = last[group] - torch.arange(len(order), device=s.device) + 1
    rank = (at_least - behind).clamp_max(width)
    return torch.where(ranked, rank, out)


def positive_ranks(pos: np.ndarray, neg: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """0-based pessimistic rank of each input's one relevant item (score ``pos`` ``[E]``)
    among its candidates (scores ``neg`` ``[E, C]``, ``valid`` ``[E, C]`` those that count):
    the number of valid candidates scoring at least as high. A NaN candidate is none; a
    NaN relevant item gets rank ``C + 1`` (no hit within ``1 + C``)."""
    pos_t = torch.as_tensor(np.asarray(pos, np.float64))
    neg_t = torch.as_tensor(np.asarray(neg, np.float64))
    neg_t = neg_t.masked_fill(~torch.as_tensor(np.asarray(valid, bool)), NEG_INF)
    scores = torch.cat([pos_t[:, None], neg_t], 1)
    first = torch.zeros(len(pos_t), dtype=torch.long)
    return relevant_ranks(scores, torch.arange(len(pos_t)), first, scores.shape[1]).numpy()


class Ranked(NamedTuple):
    """What :func:`rank_items` returns: ``scores``/``items`` ``[U, k']`` the top-k lists,
    ``ranks`` ``[P]`` the pessimistic ranks of the relevant pairs, in their given order."""

    scores: torch.Tensor
    items: torch.Tensor
    ranks: torch.Tensor


Pairs = tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]


@torch.no_grad()
def rank_items(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    k: int = 0,
    relevant: Pairs | None = None,
    width: int = 0,
    *,
    exclude: Pairs | None = None,
    allowed: torch.Tensor | None = None,
    fallback: tuple[torch.Tensor, torch.Tensor] | None = None,
    chunk: int = 1024,
) -> Ranked:
    """Score every item for every user by dot product, in user chunks, and return the
    top-``k`` lists and the ranks of the ``relevant`` pairs (module docstring's rules).

    Args:
        user_vecs: ``[U, d]``; item_vecs: ``[I, d]`` (same device).
        k: list length (``k' = min(k, I)``; 0: no lists).
        relevant: ``(user_row [P], item_index [P])``, distinct pairs to rank.
        width: ranks from ``width`` on are returned as ``width`` (e.g. ``k``, or the list
            length of the MRR).
        exclude: ``(user_row [E], item_index [E])`` pairs that are no candidates (e.g.
            the user's seen items).
        allowed: bool ``[I]``; only these items are candidates.
        fallback: ``(rows bool [U], scores [I])``: those users' scores replaced by
            ``scores`` (e.g. popularity for users without a vector), before masking.
        chunk: users scored per matmul (the results do not depend on it).
    """
    device = user_vecs.device
    k = min(k, item_vecs.shape[0])
    ex_rows, ex_cols, _ = _by_row(exclude, device)
    rel_rows, rel_cols, rel_order = _by_row(relevant, device)
    ranks = torch.full((len(rel_rows),), width, dtype=torch.long, device=device)
    lists = []
    for lo, hi, s in _blocks(user_vecs, item_vecs, chunk, fallback, allowed):
        a, b = _span(ex_rows, lo, hi)
        s[ex_rows[a:b] - lo, ex_cols[a:b]] = NEG_INF
        if k:
            lists.append(_top_k(s, k))
        a, b = _span(rel_rows, lo, hi)
        ranks[a:b] = _relevant_ranks(s, rel_rows[a:b] - lo, rel_cols[a:b], width)
    out = torch.empty_like(ranks)
    out[rel_order] = ranks
    if not lists:
        empty = torch.zeros((user_vecs.shape[0], k), dtype=torch.long, device=device)
        return Ranked(empty.to(user_vecs.dtype), empty, out)
    return Ranked(torch.cat([v for v, _ in lists]), torch.cat([i for _, i in lists]), out)


def _blocks(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    chunk: int,
    fallback: tuple[torch.Tensor, torch.Tensor] | None,
    allowed: torch.Tensor | None,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(lo, hi, scores [hi - lo, I])`` per user chunk; NaN and not allowed as ``-inf``."""
    for lo in range(0, user_vecs.shape[0], chunk):
        hi = min(lo + chunk, user_vecs.shape[0])
        s = user_vecs[lo:hi] @ item_vecs.T
        if fallback is not None:
            s[fallback[0][lo:hi].to(s.device)] = fallback[1].to(s)
        s.nan_to_num_(nan=NEG_INF, posinf=math.inf, neginf=NEG_INF)
        if allowed is not None:
            s[:, ~allowed.to(s.device)] = NEG_INF
        yield lo, hi, s


def _by_row(
    pairs: Pairs | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, cols, order)`` of the pairs sorted by row (stably; ``order`` maps back)."""
    if pairs is None:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty, empty
    rows, cols = (
        torch.from_numpy(np.array(p, np.int64)) if isinstance(p, np.ndarray) else p for p in pairs
    )
    order = torch.argsort(rows, stable=True)
    return rows[order], cols[order], order


def _span(rows: torch.Tensor, lo: int, hi: int) -> tuple[int, int]:
    """The slice of the sorted ``rows`` inside ``[lo, hi)``."""
    if len(rows) == 0:
        return 0, 0
    a, b = torch.searchsorted(rows, torch.tensor([lo, hi], device=rows.device)).tolist()
    return a, b


__all__ = ["Ranked", "ordered", "positive_ranks", "rank_items", "relevant_ranks", "top_k"]
