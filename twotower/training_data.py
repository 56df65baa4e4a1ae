"""The two-tower's training inputs: item tower inputs, user histories, positives and the
validation users, either from one dataset (:func:`prepare`: a seeded history/label split of
each user) or, leak-free, from the fit and label windows of ``audiograph split``
(:func:`prepare_windows`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from audiograph.core.atomic import read_json
from audiograph.core.embeddings import align_embeddings, read_embeddings
from audiograph.core.errors import ContractError
from audiograph.core.text_encoder import DEFAULT_CACHE
from audiograph.graphs.contract import Dataset
from audiograph.twotower.config import TwoTowerConfig
from audiograph.twotower.metrics import check_item_type
from audiograph.twotower.model import InputSpec, build_spec, item_inputs, user_inputs
from audiograph.twotower.vectors import text_vectors


def catalog_vectors(
    items: pl.DataFrame,
    emb_dir: str | Path | None,
    cfg: TwoTowerConfig,
    quiet: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(text [I, 384], hgnn [I, dim] | None)`` row-aligned with ``items``; catalog items
    missing from the embeddings get zero HGNN vectors."""
    cache = DEFAULT_CACHE if cfg.cache_dir is None else cfg.cache_dir
    text = text_vectors(items, cfg.encoder, cache, progress=not quiet)
    if not cfg.use_hgnn:
        return text, None
    if emb_dir is None:
        raise ContractError("use_hgnn needs an embeddings directory (audiograph export)")
    ids, mat, _ = read_embeddings(emb_dir)
    hgnn, missing = align_embeddings(items, ids, mat)
    if missing == items.height:
        raise ContractError(
            f"{emb_dir}: none of the catalog's item_ids is in ids.parquet"
            f" (example item_id={items['item_id'][0]!r})"
        )
    return text, hgnn


def history_vectors(text: np.ndarray, hgnn: np.ndarray | None) -> np.ndarray:
    """The vectors user histories are averaged over: ``[text | HGNN]`` ``[I, 384 + 128]``
    with HGNN inputs (2T-HGNN is the plain two-tower plus HGNN inputs), else the text."""
    return text if hgnn is None else np.concatenate([text, hgnn], axis=1)


def split_history_labels(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    label_fraction: float,
    seed: int,
    target_type: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(history rows, labels user_id/item_id)``: per user, ``round(label_fraction * n)``
    of its ``n`` distinct (target-type) items, at least 1 and leaving >= 1 history item,
    become labels (the latest by first ``ts`` when every row has one, else random);
    every interaction row with another item is history."""
    pairs = (
        interactions.group_by("user_id", "item_id")
        .agg(pl.col("ts").min())
        .sort("user_id", "item_id")
        .join(items.select("item_id", "item_type"), on="item_id", maintain_order="left")
    )
    rng = np.random.default_rng(seed)
    cand = (
        pl.col("item_type").is_not_null()
        if target_type is None
        else pl.col("item_type") == target_type
    )
    pairs = pairs.with_columns(
        _r=pl.Series(rng.random(pairs.height)),
        _n=pl.len().over("user_id"),
        _nc=cand.sum().over("user_id"),
    )
    n_label = pl.min_horizontal(
        pl.max_horizontal((pl.col("_nc") * label_fraction).round(), 1),
        pl.col("_nc"),
        pl.col("_n") - 1,
    )
    keys = ["ts", "_r"] if interactions["ts"].null_count() == 0 else ["_r"]
    labels = (
        pairs.filter(cand)
        .sort(keys, descending=True)
        .filter(pl.int_range(pl.len()).over("user_id") < n_label)
        .select("user_id", "item_id")
        .sort("user_id", "item_id")
    )
    return interactions.join(labels, on=["user_id", "item_id"], how="anti"), labels


def index_of(ids: pl.Series, keys: pl.Series) -> torch.Tensor:
    """Position in ``keys`` of each of ``ids`` (all present) as int64 ``[len(ids)]``."""
    lookup = pl.DataFrame({"k": keys, "i": np.arange(keys.len(), dtype=np.int64)})
    joined = pl.DataFrame({"k": ids}).join(lookup, on="k", maintain_order="left")
    return torch.from_numpy(joined["i"].to_numpy().copy())


VAL_FLOOR = 30
"""Validation users at least (when there are enough): the launch type's label users are
few, and ``val_fraction`` of them alone would select the model on a dozen users."""


@dataclass
class Prepared:
    """Training tensors (on ``cfg.device``): every catalog item's tower inputs, the
    validation users' inputs, their label and history pairs ``(val_row, item_index)``, the
    candidate-item mask (target type), and what :meth:`epoch_pairs` needs to draw the
    training users' history/label split of an epoch."""

    spec: InputSpec
    item: tuple[torch.Tensor, torch.Tensor]
    val_user: tuple[torch.Tensor, torch.Tensor]
    val_labels: tuple[torch.Tensor, torch.Tensor]
    val_exclude: tuple[torch.Tensor, torch.Tensor]
    allowed: torch.Tensor | None
    ds: Dataset
    train_inter: pl.DataFrame
    hist_vectors: np.ndarray
    cfg: TwoTowerConfig
    fixed: tuple | None = None  # leak-free windows: the same label pairs every epoch
    val_allowed: torch.Tensor | None = None  # validation candidates (default: ``allowed``)
    last: tuple | None = None  # (epoch, its pairs): the last epoch drawn, drawn once

    def epoch_pairs(
        self, epoch: int
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``((cat, dense) of the label users, (user_row, item_index) positives)`` of
        ``epoch``: with ``cfg.resample`` every epoch draws a fresh random history/label
        split of the training users (seeded by ``(seed, epoch)``), so over the epochs
        every training interaction serves as a label; else the seed's split every epoch."""
        if self.fixed is not None:
            return self.fixed
        if self.last is not None and self.last[0] == epoch:
            return self.last[1]
        cfg, ds, dev = self.cfg, self.ds, torch.device(self.cfg.device)
        seed = cfg.seed * 1_000_003 + epoch + 7 if cfg.resample else cfg.seed
        inter = self.train_inter.with_columns(ts=None) if cfg.resample else self.train_inter
        history, labels = split_history_labels(
            inter, ds.items, cfg.label_fraction, seed, cfg.target_type
        )
        users = labels["user_id"].unique().sort()
        ucat, udense = user_inputs(
            users, ds.users, history, ds.items, self.hist_vectors, self.spec, cfg.weighted
        )
        pairs = (
            index_of(labels["user_id"], users).to(dev),
            index_of(labels["item_id"], ds.items["item_id"]).to(dev),
        )
        self.last = (epoch, ((ucat.to(dev), udense.to(dev)), pairs))
        return self.last[1]


def validation_mask(n_users: int, cfg: TwoTowerConfig, floor: int = 0) -> np.ndarray:
    """``[n_users]`` bool: the seeded ``val_fraction`` of the (sorted) label users held out
    for early stopping (at least ``floor``, at most ``max_val_users``, at least one user
    left to train)."""
    n_val = min(max(round(cfg.val_fraction * n_users), floor), n_users - 1, cfg.max_val_users)
    is_val = np.zeros(n_users, bool)
    is_val[np.random.default_rng(cfg.seed + 1).permutation(n_users)[:n_val]] = True
    return is_val


def split_windows(data_dir: str | Path) -> dict[str, Path] | None:
    """``{"fit": dir, "labels": dir[, "validation_users": file]}`` when ``data_dir`` is the
    train part of an ``audiograph split`` (its manifest names the windows), else None."""
    f = Path(data_dir) / "manifest.json"
    windows = read_json(f).get("windows") if f.exists() else None
    return {k: (Path(data_dir) / v).resolve() for k, v in windows.items()} if windows else None


def check_types(items: pl.DataFrame, cfg: TwoTowerConfig) -> None:
    """``--target-type`` and ``--val-type`` must be item types of the catalog ``items``."""
    check_item_type(items, cfg.target_type, "--target-type")
    check_item_type(items, cfg.val_type, "--val-type")


def prepare_windows(
    fit: Dataset,
    label_rows: pl.DataFrame,
    emb_dir: str | Path | None,
    cfg: TwoTowerConfig,
    spec: InputSpec | None = None,
    quiet: bool = False,
    val_ids: pl.Series | None = None,
) -> Prepared:
    """Leak-free inputs: item text, popularity and user histories from the *fit* window
    (the two-tower's selection run: :func:`audiograph.twotower.train.select_epochs`),
    positives from the *label* window (``label_rows``), which no user input has seen (the
    graph may hold them, but not the validation users' ones). Validation holds out
    ``val_fraction`` (at least :data:`VAL_FLOOR`) of the users who have label-window positives of
    ``cfg.val_type`` (else ``cfg.target_type``; else of all label users); their labels of
    that type, ranked among the items of that type as the test ranks them, drive early
    stopping (with fewer than 2 such users: a warning that names the type, and the labels
    of every type). ``val_ids``: the split's validation users (whose label-window pairs the
    graph never saw); the validation users are those of them with such labels, and none
    of them trains."""
    items, dev, history = fit.items, torch.device(cfg.device), fit.interactions
    check_types(items, cfg)
    if history is None:
        raise ContractError(f"{fit.path}: the fit window has no interactions")
    text, hgnn = catalog_vectors(items, emb_dir, cfg, quiet)
    hist_vectors = history_vectors(text, hgnn)
    if spec is None:
        spec = build_spec(
            items,
            history,
            fit.users,
            hist_vectors.shape[1],
            text.shape[1],
            0 if hgnn is None else hgnn.shape[1],
            cfg,
        )
    typed = items.select("item_id", "item_type")
    labels = (
        label_rows.select("user_id", "item_id")
        .unique()
        .join(
            history.select("user_id", "item_id").unique(), on=["user_id", "item_id"], how="anti"
        )  # a pair the user already has is no new positive
        .join(typed, on="item_id")
        .sort("user_id", "item_id")
    )
    if cfg.target_type is not None:
        labels = labels.filter(pl.col("item_type") == cfg.target_type)
    users = labels["user_id"].unique().sort()
    if users.len() < 2:
        raise ContractError(f"{fit.path}: fewer than 2 users with label-window positives")
    val_type = cfg.val_type or cfg.target_type
    eligible = users  # validation users have labels of the type validation ranks
    if val_type is not None:
        of_type = labels.filter(pl.col("item_type") == val_type)["user_id"].unique().sort()
        if of_type.len() >= 2:
            eligible = of_type
        else:  # its recall would be 0.0 every epoch: validate on every label type
            warnings.warn(
                f"validation type {val_type!r}: {of_type.len()} user(s) with label-window "
                "positives of it (2 needed); validating on the labels of every type",
                stacklevel=2,
            )
            val_type = cfg.target_type
    held = pl.Series("user_id", [], dtype=pl.Utf8)
    if val_ids is not None:  # the split's validation users (kept out of the graph)
        held = val_ids
        val_users = eligible.filter(eligible.is_in(val_ids.implode())).head(cfg.max_val_users)
    if val_ids is None or val_users.len() < 2:
        val_users = eligible.filter(pl.Series(validation_mask(eligible.len(), cfg, VAL_FLOOR)))
    in_val = pl.col("user_id").is_in(val_users.implode())
    out = pl.concat([val_users, held])
    train_users = users.filter(~users.is_in(out.implode()))
    val_labels = labels.filter(in_val)
    if val_type is not None:
        val_labels = val_labels.filter(pl.col("item_type") == val_type)
    ids = items["item_id"]

    def pairs(df: pl.DataFrame, u: pl.Series) -> tuple[torch.Tensor, torch.Tensor]:
        return index_of(df["user_id"], u).to(dev), index_of(df["item_id"], ids).to(dev)

    def inputs(u: pl.Series) -> tuple[torch.Tensor, torch.Tensor]:
        cat, dense = user_inputs(u, fit.users, history, items, hist_vectors, spec, cfg.weighted)
        return cat.to(dev), dense.to(dev)

    allowed = (
        None
        if cfg.target_type is None
        else torch.from_numpy((items["item_type"] == cfg.target_type).to_numpy(writable=True)).to(
            dev
        )
    )
    train_labels = labels.filter(pl.col("user_id").is_in(train_users.implode()))
    return Prepared(
        spec,
        tuple(t.to(dev) for t in item_inputs(items, spec, text, hgnn, history)),
        inputs(val_users),
        pairs(val_labels, val_users),
        pairs(history.filter(in_val), val_users),
        allowed,
        fit,
        train_labels,
        hist_vectors,
        cfg,
        fixed=(inputs(train_users), pairs(train_labels, train_users)),
        val_allowed=_released(items, val_type, [history, label_rows]).to(dev),
    )


def _released(
    items: pl.DataFrame, item_type: str | None, parts: list[pl.DataFrame]
) -> torch.Tensor:
    """bool ``[I]``: the validation candidates, the items of ``item_type`` (any type when
    None) that some training row (``parts``) shows released before the cut. An item
    released after it (no training row: a new item of the test period) did not exist when
    the label window was played, so it is no candidate there."""
    seen = pl.concat([p.select("item_id") for p in parts]).unique()
    mask = items["item_id"].is_in(seen["item_id"].implode())
    if item_type is not None:
        mask &= items["item_type"] == item_type
    return torch.from_numpy(mask.to_numpy(writable=True))


def prepare(
    ds: Dataset,
    emb_dir: str | Path | None,
    cfg: TwoTowerConfig,
    spec: InputSpec | None = None,
    quiet: bool = False,
    validate: bool = True,
) -> Prepared:
    """Hold out ``val_fraction`` of the users with labels (seeded), split their history
    and labels, and build the item and validation inputs (``spec`` from the data unless
    given, e.g. when resuming). ``validate=False``: no user is held out (the refit on all
    of train, whose epochs were chosen before)."""
    if ds.interactions is None:
        raise ContractError(f"{ds.path}: no interactions.parquet to train on")
    items, dev = ds.items, torch.device(cfg.device)
    check_types(items, cfg)
    text, hgnn = catalog_vectors(items, emb_dir, cfg, quiet)
    history, labels = split_history_labels(
        ds.interactions, items, cfg.label_fraction, cfg.seed, cfg.target_type
    )
    hist_vectors = history_vectors(text, hgnn)
    if spec is None:
        spec = build_spec(
            items,
            ds.interactions,
            ds.users,
            hist_vectors.shape[1],
            text.shape[1],
            0 if hgnn is None else hgnn.shape[1],
            cfg,
        )
    users = labels["user_id"].unique().sort()
    if users.len() < 2:
        raise ContractError(f"{ds.path}: fewer than 2 users with >= 2 distinct items to train on")
    is_val = validation_mask(users.len(), cfg) if validate else np.zeros(users.len(), bool)
    val_users = users.filter(pl.Series(is_val))
    vcat, vdense = user_inputs(
        val_users, ds.users, history, items, hist_vectors, spec, cfg.weighted
    )
    ids = items["item_id"]

    def pairs(df: pl.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        return index_of(df["user_id"], val_users).to(dev), index_of(df["item_id"], ids).to(dev)

    in_val = pl.col("user_id").is_in(val_users.implode())
    allowed = (
        None
        if cfg.target_type is None
        else torch.from_numpy((items["item_type"] == cfg.target_type).to_numpy()).to(dev)
    )
    return Prepared(
        spec,
        tuple(t.to(dev) for t in item_inputs(items, spec, text, hgnn, ds.interactions)),
        (vcat.to(dev), vdense.to(dev)),
        pairs(labels.filter(in_val)),
        pairs(history.filter(in_val)),
        allowed,
        ds,
        ds.interactions.filter(~in_val),
        hist_vectors,
        cfg,
    )


def window_validation_users(windows: dict[str, Path]) -> pl.Series | None:
    """The split's validation users (``validation_users.parquet``), or None for a split
    written before it had them."""
    f = windows.get("validation_users")
    return pl.read_parquet(f)["user_id"] if f is not None and Path(f).is_file() else None
