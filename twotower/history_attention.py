"""Attention pooling over a user's history, the user tower's alternative to a plain mean.

The mean of a history's item vectors weighs a one-off play like the user's favourite. Here
the user tower also reads the user's ``L`` most recent (else most played) items: each is
its fixed history vector (``[text | HGNN]``, or the text for the plain two-tower) plus two
inputs, ``log1p(weight)`` and its position in that order (``0`` first, ``1`` last), and
``Q`` learned queries attend over them; the ``Q`` pooled vectors join the tower's input.
Users stay out of the graph: nothing here is per user but the history.

The history travels in the user tower's dense input, after every other column
(:func:`history_columns`): ``L`` item rows (``-1``: none), ``L`` log-weights, ``L``
positions, so every caller of :func:`~audiograph.twotower.model.user_inputs` gets it for
free. Item rows are float32 in that tensor: exact below 2**24 items.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

MAX_ROWS = 1 << 24  # float32 holds every integer below this exactly


def history_columns(
    interactions: pl.DataFrame, item_rows: pl.DataFrame, users: pl.Series, length: int
) -> np.ndarray:
    """float32 ``[len(users), 3 * length]``: per user its ``length`` latest items (by first
    ``ts`` when every row has one, else by total weight; ties by item row), as ``[rows |
    log1p(weight) | position / length]``, padded with row ``-1`` and zeros.

    ``interactions``: ``user_id, item_id, weight, ts``; ``item_rows``: ``item_id, row``
    (rows of the history-vector table; other items are ignored)."""
    n = users.len()
    out = np.zeros((n, 3 * length), np.float32)
    out[:, :length] = -1
    if n == 0 or interactions.height == 0:
        return out
    if item_rows.height >= MAX_ROWS:
        raise ValueError(f"attention pooling holds item rows below {MAX_ROWS:,}")
    uidx = pl.DataFrame({"user_id": users, "_u": np.arange(n, dtype=np.int64)})
    timed = interactions["ts"].null_count() == 0
    per_pair = (
        interactions.join(uidx, on="user_id")
        .join(item_rows.select("item_id", "row"), on="item_id")
        .group_by("_u", "row")
        .agg(w=pl.col("weight").sum(), t=pl.col("ts").min() if timed else pl.lit(0))
    )
    key = ["t", "row"] if timed else ["w", "row"]
    ranked = (
        per_pair.sort(["_u", *key], descending=[False, True, False])
        .with_columns(pos=pl.int_range(pl.len()).over("_u"))
        .filter(pl.col("pos") < length)
    )
    u, pos = ranked["_u"].to_numpy(), ranked["pos"].to_numpy()
    out[u, pos] = ranked["row"].to_numpy()
    out[u, length + pos] = np.log1p(np.maximum(ranked["w"].to_numpy(), 0.0))
    out[u, 2 * length + pos] = pos / max(length - 1, 1)
    return out


class HistoryAttention(nn.Module):
    """``Q`` learned queries over a history: ``[B, 3 L]`` columns → ``[B, Q * dim]``.

    ``table`` (buffer ``[n_items, vec_dim]``, saved with the model) holds the fixed item
    vectors the history rows index; key ``= W_k [v | log-weight | position]``, value
    ``= W_v v`` (``v``: the table row, plus the item's learned ID vector when the model has
    one); a user without history pools to zeros."""

    def __init__(
        self, n_items: int, vec_dim: int, length: int, queries: int, dim: int = 64, id_dim: int = 0
    ):
        super().__init__()
        self.length, self.dim = length, dim
        self.register_buffer("table", torch.zeros(n_items, vec_dim))
        self.key = nn.Linear(vec_dim + id_dim + 2, dim)
        self.value = nn.Linear(vec_dim + id_dim, dim)
        self.queries = nn.Parameter(torch.randn(queries, dim) / math.sqrt(dim))

    @property
    def out_dim(self) -> int:
        return self.queries.shape[0] * self.dim

    def forward(self, cols: torch.Tensor, ids: nn.Embedding | None = None) -> torch.Tensor:
        """``cols`` ``[B, 3 L]`` (:func:`history_columns`) → ``[B, Q * dim]``; ``ids``: the
        item-ID embedding (row ``r + 1`` for catalog row ``r``) appended to each vector."""
        length = self.length
        rows = cols[:, :length].long()
        pad = rows < 0
        v = self.table[rows.clamp_min(0)]  # [B, L, vec_dim]
        if ids is not None:
            v = torch.cat([v, ids(torch.where(pad, 0, rows + 1))], dim=-1)
        feats = torch.stack([cols[:, length : 2 * length], cols[:, 2 * length :]], dim=-1)
        k = self.key(torch.cat([v, feats], dim=-1))  # [B, L, dim]
        logits = torch.einsum("qd,bld->bql", self.queries, k) / math.sqrt(self.dim)
        logits = logits.masked_fill(pad[:, None, :], float("-inf"))
        w = torch.nan_to_num(F.softmax(logits, dim=-1))  # an empty history: all zeros
        return torch.einsum("bql,bld->bqd", w, self.value(v)).flatten(1)
