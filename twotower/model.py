"""The user-decoupled two-tower model of 2T-HGNN and the tensors it eats.

User tower input (one row per user): embeddings of the categorical columns of
``users.parquet`` (index 0 = unknown/missing), its numeric columns standardized with the
training mean/std, and for every ``"item_type/signal"`` key the weight-aware mean of the
vectors of the items the user interacted with (text and HGNN vectors concatenated, or text
vectors alone for the plain two-tower baseline) plus ``log1p(count)``. A user without
history gets zero means and counts, so a cold user still has a vector from its features.

Item tower input: item-type embedding, embeddings of the catalog's categorical metadata
(string columns with <= ``MAX_VOCAB`` distinct values), the item's training popularity
(``log1p`` of its distinct users), the text vector and (with HGNN) the HGNN vector. Both
towers are MLPs (ReLU between layers) with L2-normalized outputs; the score is
``u . v / temperature``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from audiograph.twotower.history_attention import HistoryAttention, history_columns
from audiograph.twotower.vectors import history_means

MAX_VOCAB = 1000
RESERVED = ("item_id", "item_type", "title", "description", "tags")


@dataclass
class InputSpec:
    """What the towers read; fixed at training time and saved in the run's config."""

    history_keys: list[str]
    history_dim: int
    text_dim: int
    hgnn_dim: int = 0
    item_types: list[str] = field(default_factory=list)
    item_categorical: dict[str, list[str]] = field(default_factory=dict)
    user_categorical: dict[str, list[str]] = field(default_factory=dict)
    user_numeric: dict[str, list[float]] = field(default_factory=dict)  # col -> [mean, std]
    history_items: int = 0  # L latest items attention-pooled (0: the means only)
    attention_queries: int = 0
    n_items: int = 0  # catalog rows (the attention's table, the item-ID embedding)
    item_ids: int = 0  # size of the warm items' learned ID embedding (0: none)

    @property
    def user_dense_dim(self) -> int:
        means = len(self.user_numeric) + len(self.history_keys) * (self.history_dim + 1)
        return means + 3 * self.history_items

    @property
    def item_dense_dim(self) -> int:
        return 1 + self.text_dim + self.hgnn_dim  # popularity, text, HGNN


def _vocab(s: pl.Series) -> list[str] | None:
    """Sorted distinct non-null values of a string column, or None when it is id-like."""
    values = s.drop_nulls().unique().sort()
    return values.to_list() if 0 < values.len() <= MAX_VOCAB else None


def build_spec(
    items: pl.DataFrame,
    interactions: pl.DataFrame,
    users: pl.DataFrame | None,
    history_dim: int,
    text_dim: int,
    hgnn_dim: int,
    cfg: Any = None,
) -> InputSpec:
    """The input spec of a dataset: vocabularies, numeric mean/std and history keys
    (every ``item_type/signal`` pair present in ``interactions``); the history attention's
    size from ``cfg`` (a ``TwoTowerConfig``; none: no attention)."""
    keys = (
        interactions.join(items.select("item_id", "item_type"), on="item_id")
        .select(key=pl.concat_str("item_type", pl.lit("/"), "signal"))
        .unique()
        .sort("key")["key"]
        .to_list()
    )
    spec = InputSpec(keys, history_dim, text_dim, hgnn_dim, sorted(items["item_type"].unique()))
    if cfg is not None and cfg.history_items:
        spec.history_items, spec.attention_queries = cfg.history_items, cfg.attention_queries
    if cfg is not None and cfg.item_ids:
        spec.item_ids = cfg.item_ids
    spec.n_items = items.height if spec.history_items or spec.item_ids else 0
    for col in items.columns:
        if col not in RESERVED and items.schema[col] == pl.Utf8 and (v := _vocab(items[col])):
            spec.item_categorical[col] = v
    for col in [] if users is None else users.columns[1:]:
        dtype = users.schema[col]
        if dtype == pl.Utf8 and (v := _vocab(users[col])):
            spec.user_categorical[col] = v
        elif dtype.is_numeric() or dtype == pl.Boolean:
            x = users[col].cast(pl.Float64).drop_nulls().drop_nans()
            mean, std = (x.mean() or 0.0, x.std() or 1.0) if x.len() else (0.0, 1.0)
            spec.user_numeric[col] = [float(mean), float(std) if std > 0 else 1.0]
    return spec


def _codes(s: pl.Series, vocab: list[str]) -> np.ndarray:
    """int64 codes: position in ``vocab`` + 1, 0 for unknown or missing values."""
    lookup = pl.DataFrame(
        {"v": pl.Series(vocab, dtype=pl.Utf8), "c": np.arange(1, len(vocab) + 1, dtype=np.int64)}
    )
    frame = pl.DataFrame({"v": s.cast(pl.Utf8)}).join(lookup, on="v", how="left")
    return frame["c"].fill_null(0).to_numpy()


def item_inputs(
    items: pl.DataFrame,
    spec: InputSpec,
    text: np.ndarray,
    hgnn: np.ndarray | None,
    interactions: pl.DataFrame | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cat int64 [I, 1 + C], dense float32 [I, 1 + text_dim + hgnn_dim])`` for ``items``
    (``text``/``hgnn`` are row-aligned with ``items``); the first dense column is the
    item's popularity ``log1p(distinct users in interactions)`` (0 without interactions)."""
    cols = [_codes(items["item_type"], spec.item_types)]
    cols += [
        _codes(items[c], v) if c in items.columns else np.zeros(items.height, np.int64)
        for c, v in spec.item_categorical.items()
    ]
    pop = np.zeros((items.height, 1), np.float32)
    if interactions is not None:
        counts = interactions.group_by("item_id").agg(n=pl.col("user_id").n_unique())
        n = items.select("item_id").join(counts, on="item_id", how="left", maintain_order="left")
        pop[:, 0] = np.log1p(n["n"].fill_null(0).to_numpy().astype(np.float32))
    if spec.item_ids:  # last: the ID code, row + 1 for a warm item, 0 (none) for a new one
        cols.append(np.where(pop[:, 0] > 0, np.arange(1, items.height + 1), 0))
    dense = [pop, text] + ([hgnn] if spec.hgnn_dim else [])
    return (
        torch.from_numpy(np.stack(cols, axis=1)),
        torch.from_numpy(np.concatenate(dense, axis=1).astype(np.float32)),
    )


def user_inputs(
    user_ids: pl.Series,
    users: pl.DataFrame | None,
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    vectors: np.ndarray,
    spec: InputSpec,
    weighted: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cat int64 [U, Cu], dense float32 [U, Nu + K * (history_dim + 1)])`` for
    ``user_ids``: features from ``users`` (unknown/missing → code 0 / the mean) and the
    history of ``interactions`` over ``vectors`` (``[len(items), history_dim]``, row-aligned
    with ``items``; history keys not in ``spec`` are ignored, missing ones are zero)."""
    n = user_ids.len()
    table = pl.DataFrame({"user_id": user_ids.cast(pl.Utf8)})
    if users is not None:
        table = table.join(users, on="user_id", how="left", maintain_order="left")
    cat = [
        _codes(table[c], v) if c in table.columns else np.zeros(n, np.int64)
        for c, v in spec.user_categorical.items()
    ]
    dense = []
    for c, (mean, std) in spec.user_numeric.items():
        x = table[c].cast(pl.Float64).to_numpy() if c in table.columns else np.full(n, mean)
        dense.append(np.nan_to_num((x - mean) / std)[:, None])
    rows = items.select("item_id", "item_type", row=pl.int_range(items.height, dtype=pl.Int64))
    means, counts = history_means(interactions, rows, vectors, table["user_id"], weighted)
    zeros = np.zeros((n, spec.history_dim), np.float32)
    dense += [means.get(k, zeros) for k in spec.history_keys]
    dense += [np.log1p(counts.get(k, zeros[:, 0]))[:, None] for k in spec.history_keys]
    if spec.history_items:  # the attention's columns, last
        dense.append(history_columns(interactions, rows, table["user_id"], spec.history_items))
    cat_t = torch.from_numpy(np.stack(cat, axis=1)) if cat else torch.zeros(n, 0, dtype=torch.long)
    dense_t = np.concatenate(dense, axis=1) if dense else np.zeros((n, 0))
    return cat_t, torch.from_numpy(dense_t.astype(np.float32))


class Tower(nn.Module):
    """Categorical embeddings + dense input → MLP → ``[B, dims[-1]]`` (not normalized).

    With ``zero_last`` the MLP's last layer starts near zero (weights scaled by 0.01, zero
    bias), so the two-tower skip path carries almost the whole score at initialization."""

    def __init__(
        self,
        vocab_sizes: list[int],
        dense_dim: int,
        dims: list[int],
        cat_dim: int,
        zero_last: bool = False,
    ):
        super().__init__()
        self.embs = nn.ModuleList(nn.Embedding(n, cat_dim) for n in vocab_sizes)
        layers: list[nn.Module] = []
        d = dense_dim + cat_dim * len(vocab_sizes)
        for i, h in enumerate(dims):
            layers.append(nn.Linear(d, h))
            if i < len(dims) - 1:
                layers.append(nn.ReLU())
            d = h
        self.mlp = nn.Sequential(*layers)
        if zero_last:
            with torch.no_grad():
                self.mlp[-1].weight.mul_(0.01)
                self.mlp[-1].bias.zero_()

    def forward(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``cat`` int64 ``[B, C]``, ``dense`` float32 ``[B, D]`` → ``[B, dims[-1]]``."""
        x = torch.cat([dense] + [e(cat[:, j]) for j, e in enumerate(self.embs)], dim=-1)
        return self.mlp(x)


class UserHistoryMean(nn.Module):
    """The user's mean history vector over all keys, from the user tower's dense input
    (``[numeric | K means of history_dim | K log1p counts]``), weighted by the counts;
    only its last ``width`` columns (default all: e.g. the HGNN part of ``[text | HGNN]``)."""

    def __init__(self, spec: InputSpec, width: int | None = None):
        super().__init__()
        self.lo, self.k, self.dim = len(spec.user_numeric), len(spec.history_keys), spec.history_dim
        self.width = width or spec.history_dim

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        hi = self.lo + self.k * self.dim
        means = dense[:, self.lo : hi].view(-1, self.k, self.dim)[..., -self.width :]
        counts = torch.expm1(dense[:, hi : hi + self.k])
        return (means * counts[..., None]).sum(1) / counts.sum(1, keepdim=True).clamp_min(1.0)


class ItemHistoryVector(nn.Module):
    """The item's vector in the history space: its last ``width`` dense columns (default
    ``history_dim``: ``[text | HGNN]``, or the text for the plain two-tower)."""

    def __init__(self, spec: InputSpec, width: int | None = None):
        super().__init__()
        self.dim = width or spec.history_dim

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        return dense[:, -self.dim :]


ID_DROPOUT = 0.1
"""Share of warm items whose ID a training batch hides (the new items' case)."""

SKIP_VECTORS = ("knn", "history")
"""How the two-tower's skip path enters the score: ``knn`` (exact: the towers' outputs
carry the HGNN-KNN cosine, or LLM-KNN's for the plain two-tower, next to the MLP's) or
``history`` (the earlier design: a learned projection of ``[text | HGNN]`` added to the
MLP's output)."""


class TwoTower(nn.Module):
    """User and item towers built from an :class:`InputSpec`; L2-normalized outputs.

    With ``skip="knn"`` (default) each tower's output is the concatenation
    ``[a * normalize(mlp(x)), normalize(s)] / sqrt(a^2 + 1)`` (item: ``a = 1``) where
    ``s`` is the k-NN vector: the user's count-weighted history mean and the item's own
    vector in the HGNN space (the text space for the plain two-tower). The score is then
    ``(a cos(mlp_u, mlp_v) + cos(s_u, s_v)) / (sqrt(2) sqrt(a^2 + 1))``: with the learned
    weight ``a`` starting at 0.1 the untrained model ranks as HGNN-KNN does, and training
    learns how much of the MLPs' correction to add. ``skip="history"`` is the earlier
    design: ``normalize(mlp(x) + P normalize(s))`` with ``s`` in ``[text | HGNN]`` and
    ``P`` one projection shared by both towers, the MLPs' last layers starting near zero.
    Output size: ``dims[-1]`` (+ the k-NN vector's size with ``knn``)."""

    def __init__(
        self,
        spec: InputSpec,
        dims: list[int],
        cat_dim: int,
        skip: bool,
        skip_vector: str,
    ):
        super().__init__()
        user_vocab = [len(v) + 1 for v in spec.user_categorical.values()]
        item_vocab = [len(spec.item_types) + 1]
        item_vocab += [len(v) + 1 for v in spec.item_categorical.values()]
        projected = skip and skip_vector == "history"
        self.attention, user_dense = None, spec.user_dense_dim
        if spec.history_items:
            self.attention = HistoryAttention(
                spec.n_items,
                spec.history_dim,
                spec.history_items,
                spec.attention_queries,
                id_dim=spec.item_ids,
            )
            user_dense += self.attention.out_dim - 3 * spec.history_items
        self.item_id = None
        if spec.item_ids:  # row 0: a new item (no ID), learned rows for the warm items
            self.item_id = nn.Embedding(spec.n_items + 1, spec.item_ids, padding_idx=0)
            nn.init.normal_(self.item_id.weight, std=0.01)
            with torch.no_grad():
                self.item_id.weight[0].zero_()
        self.user_tower = Tower(user_vocab, user_dense, dims, cat_dim, projected)
        item_dense = spec.item_dense_dim + spec.item_ids
        self.item_tower = Tower(item_vocab, item_dense, dims, cat_dim, projected)
        self.proj = self.log_a = None
        if projected:
            self.user_skip, self.item_skip = UserHistoryMean(spec), ItemHistoryVector(spec)
            self.proj = nn.Linear(spec.history_dim, dims[-1], bias=False)
            if spec.history_dim == dims[-1]:
                nn.init.eye_(self.proj.weight)
            else:
                nn.init.orthogonal_(self.proj.weight)
        elif skip:
            width = spec.hgnn_dim or spec.history_dim  # the HGNN part, else the text
            self.user_skip = UserHistoryMean(spec, width)
            self.item_skip = ItemHistoryVector(spec, width)
            self.log_a = nn.Parameter(torch.tensor(math.log(0.1)))

    @classmethod
    def of_config(cls, spec: InputSpec, cfg: Any) -> TwoTower:
        """The model a run's settings (``TwoTowerConfig``, saved with the run) describe."""
        return cls(spec, cfg.tower_dims, cfg.cat_dim, cfg.skip, cfg.skip_vector)

    def _out(self, h: torch.Tensor, s: torch.Tensor | None, a: torch.Tensor | None):
        if s is None:
            return F.normalize(h, dim=-1)
        if a is None:  # the item side: equal parts
            a = torch.ones((), device=h.device)
        parts = [a * F.normalize(h, dim=-1), F.normalize(s, dim=-1)]
        return torch.cat(parts, dim=-1) / torch.sqrt(a * a + 1)

    def set_history_table(self, vectors: np.ndarray) -> None:
        """The attention's item vectors (``[n_items, history_dim]``, the history space)."""
        if self.attention is not None:
            self.attention.table.copy_(torch.from_numpy(np.asarray(vectors, np.float32)))

    def user(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """User vectors ``[B, d]`` from ``user_inputs`` rows."""
        x = dense
        if self.attention is not None:
            cut = dense.shape[1] - 3 * self.attention.length
            pooled = self.attention(dense[:, cut:], self.item_id)
            x = torch.cat([dense[:, :cut], pooled], dim=1)
        h = self.user_tower(cat, x)
        if self.proj is not None:
            return F.normalize(h + self.proj(F.normalize(self.user_skip(dense), dim=-1)), dim=-1)
        a = None if self.log_a is None else self.log_a.exp()
        return self._out(h, None if a is None else self.user_skip(dense), a)

    def hide_ids(self, cat: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``cat`` with :data:`ID_DROPOUT` of its item IDs hidden (set to 0, as a new
        item's), drawn from ``generator``: in training, so the text/HGNN path learns to
        stand alone. Unchanged without ID embeddings."""
        if self.item_id is None:
            return cat
        keep = torch.rand(len(cat), generator=generator) >= ID_DROPOUT
        return torch.cat([cat[:, :-1], cat[:, -1:] * keep.to(cat.device)[:, None]], dim=1)

    def item(self, cat: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Item vectors ``[B, d]`` from ``item_inputs`` rows."""
        x = dense
        if self.item_id is not None:  # the ID code is the last column
            ids, cat = cat[:, -1], cat[:, :-1]
            x = torch.cat([dense, self.item_id(ids)], dim=1)
        h = self.item_tower(cat, x)
        if self.proj is not None:
            return F.normalize(h + self.proj(F.normalize(self.item_skip(dense), dim=-1)), dim=-1)
        return self._out(h, None if self.log_a is None else self.item_skip(dense), None)
