"""Train/test splits of a contract dataset, and per-type downsampling of interactions.

* :func:`split_dataset` — writes ``OUT/train`` and ``OUT/test`` (two full contract
  datasets: items and users copied to both, interactions split) and
  ``OUT/manifest.json``. When every interaction has a timestamp the split is a global
  temporal one (train strictly before the cut, test at or after it); otherwise each user's
  distinct items are held out at random, with every signal of a held-out ``(user, item)``
  pair going to test, so no weak signal leaks the answer into train. Search queries
  (``queries.parquet``) are split per item the same way: each item with ``n >= 2``
  ``(query, item)`` rows holds out ``clip(round_half_up(test_fraction * n), 1, n - 1)``;
  where the queries are tags users gave (Last.fm), they follow the interactions instead
  (:func:`~audiograph.graphs.user_tags.side_queries`), so no test query is in train text.
* :func:`downsample_type` — keeps a random fraction of one item type's ``(user, item)``
  pairs (all their rows), e.g. to make Douban books a sparse type.
* :func:`retype_items` — gives items a new type by their most-used tag on the train side
  (``retype``), e.g. the Last.fm ``vertical``, so no test-period tag decides a type.

Both are seeded and independent of the row order of the input.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.core.atomic import atomic_dir, claim_output, write_json
from audiograph.core.config import configure
from audiograph.core.errors import ContractError, contract_error
from audiograph.core.formats import FORMAT_VERSION
from audiograph.graphs.config import SplitConfig
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.thinning import (
    downsample_type,
    keep_adopters,
    release_new_items,
    seeded_subset,
)
from audiograph.graphs.user_tags import has_user_tags, recount_tags, side_queries

PAIR = ["user_id", "item_id"]
VALIDATION_USERS = "validation_users.parquet"
VAL_FLOOR = 100
"""Validation users per item type at least (when the type has twice as many label users):
a launch type's label users are few, and a tenth of them would select on a dozen users."""


def split_dataset(
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: SplitConfig | None = None,
    *,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Split the interactions of the dataset ``data_dir`` into train and test, and train
    into a *fit* and a *label* window.

    Args:
        data_dir: a contract dataset directory with interactions.
        out_dir: output directory; gets ``fit/``, ``labels/``, ``train/`` (= fit + labels),
            ``graph/`` (train without the validation users' label-window pairs: what the
            graph is built from), ``test/``, ``validation_users.parquet``
            (:func:`validation_users`) and ``manifest.json`` (written atomically).
        cfg: the :class:`SplitConfig` (default: its defaults); keyword ``options`` (e.g.
            ``seed=3``) override its fields. Users with one item stay in train.
        quiet: no progress output.

    Returns:
        The manifest: ``kind="split"``, ``method``, ``cut_ts`` and ``label_cut_ts``
        (temporal only), the fractions, ``seed``, ``downsample``, ``adopters``,
        ``new_items`` (per type: share, items, training rows dropped, test pairs), ``retype``
        (per new type: its tags, rule and number of items) and per part
        (``fit``/``labels``/``train``/``test``) the number of rows, ``(user, item)`` pairs,
        users and rows per item type.
    """
    cfg = configure(SplitConfig, cfg, options, "split")
    test_fraction, label_fraction, seed = cfg.test_fraction, cfg.label_fraction, cfg.seed
    method, downsample, adopters, retype = cfg.method, cfg.downsample, cfg.adopters, cfg.retype
    claim_output(out_dir, "split", [data_dir])
    ds = read_dataset(data_dir)
    inter = ds.interactions
    if inter is None:
        raise ContractError(f"{data_dir}: no interactions table to split")
    has_ts = inter["ts"].null_count() == 0
    if method == "temporal" and not has_ts:
        row = int(inter["ts"].is_null().arg_max())
        bad = inter.row(row, named=True)
        shown = {k: bad[k] for k in ("ts", "user_id", "item_id", "signal")}
        raise contract_error(
            "interactions.parquet", "ts", "temporal split needs a ts on every row", shown, row
        )
    use = "temporal" if method == "temporal" or (method == "auto" and has_ts) else "random"
    train, test, cut = _hold_out(inter, test_fraction, seed, use)
    q_train = q_test = None
    if ds.queries is not None and has_user_tags(inter):  # queries are user tags: per side
        q_train, q_test = side_queries(ds.queries, train, test)
    elif ds.queries is not None:
        q_in_test = _held_out_rows(ds.queries, test_fraction, seed, ["item_id", "query"])
        q_train, q_test = ds.queries.filter(~q_in_test), ds.queries.filter(q_in_test)
    # types from the train side only, before any thinning reads them; every part gets them
    items, retyped = retype_items(ds.items, train, retype) if retype else (ds.items, {})
    released: dict[str, Any] = {}
    for item_type, share in (cfg.new_items or {}).items():
        before = train.height
        train, new = release_new_items(train, items, item_type, share, seed)
        test_pairs = test.filter(pl.col("item_id").is_in(new.implode())).select(PAIR).unique()
        released[item_type] = {
            "share": share,
            "items": new.len(),
            "rows_dropped": before - train.height,
            "test_pairs": test_pairs.height,
        }
    launched: dict[str, Any] = {}
    for item_type, share in (adopters or {}).items():
        before = train.height
        train, kept = keep_adopters(train, items, item_type, share, seed)
        launched[item_type] = {
            "share": share,
            "adopters": kept.len(),
            "rows_dropped": before - train.height,
        }
    for item_type, keep in (downsample or {}).items():
        train = downsample_type(train, items, item_type, keep, seed)
    fit, labels, label_cut = _hold_out(train, label_fraction, seed + 1, use, whole_pairs=True)
    val_users = validation_users(labels, items, cfg.val_users, seed)
    held = labels.filter(pl.col("user_id").is_in(val_users.implode())).select(PAIR).unique()
    graph = train.join(held, on=PAIR, how="anti", maintain_order="left")
    parts = {"fit": fit, "labels": labels, "train": train, "graph": graph, "test": test}
    for name, side in parts.items():
        if side.height == 0:
            raise ContractError(
                f"{data_dir}: the {use} split (test_fraction={test_fraction}, "
                f"label_fraction={label_fraction}) leaves the {name} part empty"
            )

    manifest: dict[str, Any] = {
        "kind": "split",
        "format_version": FORMAT_VERSION,
        "source": str(Path(data_dir).absolute()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": use,
        "cut_ts": cut,
        "label_cut_ts": label_cut,
        "test_fraction": test_fraction,
        "label_fraction": label_fraction,
        "seed": seed,
        "downsample": downsample or {},
        "adopters": launched,
        "new_items": released,
        "validation_users": val_users.len(),
        "retype": retyped,
        "user_tags_recounted": has_user_tags(inter),
        **{name: _side_counts(side, items) for name, side in parts.items()},
    }
    queries = {"fit": q_train, "labels": None, "train": q_train, "graph": q_train, "test": q_test}
    if ds.queries is not None:
        for name in ("train", "test"):
            manifest[name]["queries"] = queries[name].height
    with atomic_dir(out_dir, "split", [data_dir]) as tmp:
        for name, side in parts.items():
            (tmp / name).mkdir()
            catalog = recount_tags(items, side) if has_user_tags(side) else items
            q = queries[name] if queries[name] is not None and queries[name].height else None
            write_dataset(tmp / name, catalog, side, ds.users, q)  # no query: no file
            part = {
                "kind": "dataset",
                "format_version": FORMAT_VERSION,
                "source": f"split:{name}",
                "counts": manifest[name],
            }
            if name == "train":  # the two-tower reads its windows from here
                part["windows"] = {
                    "fit": "../fit",
                    "labels": "../labels",
                    "validation_users": f"../{VALIDATION_USERS}",
                }
            write_json(tmp / name / "manifest.json", part)
        val_users.to_frame("user_id").write_parquet(tmp / VALIDATION_USERS)
        write_json(tmp / "manifest.json", manifest)
    if not quiet:
        tr, te = manifest["train"], manifest["test"]
        print(
            f"split ({use}{'' if cut is None else f', cut ts {cut}'}): "
            f"train {tr['interactions']} rows / {tr['pairs']} pairs "
            f"(fit {manifest['fit']['pairs']} + labels {manifest['labels']['pairs']} pairs), "
            f"test {te['interactions']} rows / {te['pairs']} pairs -> {out_dir}",
            file=sys.stderr,
        )
    return manifest


def validation_users(
    labels: pl.DataFrame, items: pl.DataFrame, share: float, seed: int
) -> pl.Series:
    """The users whose label-window pairs validate model selection (sorted ids): per item
    type, a seeded ``share`` of the users with label-window pairs of that type (at least
    :data:`VAL_FLOOR`, at most half of them), united over the types. Their label-window
    pairs stay out of the ``graph`` part, so a graph model cannot see what they validate."""
    typed = labels.select(PAIR).unique().join(items.select("item_id", "item_type"), on="item_id")
    chosen = []
    rng = np.random.default_rng([seed, 0x76616C])  # its own stream: "val"
    for t in sorted(typed["item_type"].unique().to_list()):
        users = typed.filter(pl.col("item_type") == t)["user_id"].unique().sort()
        n = min(max(round(share * users.len()), min(VAL_FLOOR, users.len() // 2)), users.len())
        chosen.append(seeded_subset(users, n, rng))
    if not chosen:
        return pl.Series("user_id", [], dtype=pl.Utf8)
    return pl.concat(chosen).unique().sort().alias("user_id")


def _hold_out(
    inter: pl.DataFrame, fraction: float, seed: int, use: str, whole_pairs: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame, int | None]:
    """``(kept, held out, cut ts | None)``. Temporal: rows at or after the ``1 - fraction``
    quantile of ``ts`` (``whole_pairs``: every row of a pair first seen then); random:
    :func:`_held_out_rows` (whole pairs, per user)."""
    if use == "temporal":
        cut = int(inter["ts"].quantile(1.0 - fraction, "nearest"))
        first = pl.col("ts").min().over(PAIR) if whole_pairs else pl.col("ts")
        held = inter.select(first >= cut).to_series()
    else:
        cut, held = None, _held_out_rows(inter, fraction, seed)
    return inter.filter(~held), inter.filter(held), cut


def retype_items(
    items: pl.DataFrame, train: pl.DataFrame, rules: dict[str, list[str]]
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``(items retyped, manifest entry)``: an item whose most-used tag on the train side
    is one of ``rules[t]`` gets item type ``t`` (the first matching rule wins), every other
    item keeps its type. The tags are counted from the ``train`` rows' user tags
    (:func:`~audiograph.graphs.user_tags.recount_tags`, ties by name) when they carry
    them, else the catalog's own tags (which no interaction wrote) decide."""
    user_tags = has_user_tags(train)
    counted = recount_tags(items, train) if user_tags else items
    to_type: dict[str, str] = {}
    for new_type, tags in rules.items():
        if (items["item_type"] == new_type).any():
            raise ContractError(
                f"--retype {new_type}: the catalog already has items of type "
                f"{new_type!r}; prepare it without that type"
            )
        for tag in tags:
            to_type.setdefault(tag, new_type)
    top = counted["tags"].list.first().replace_strict(to_type, default=None, return_dtype=pl.Utf8)
    out = items.with_columns(item_type=pl.coalesce(top, pl.col("item_type")))
    source = "the train part's user tags" if user_tags else "the catalog's tags"
    entry = {}
    for new_type, tags in rules.items():
        n = int((out["item_type"] == new_type).sum())
        if n == 0:
            raise ContractError(
                f"--retype {new_type}: no item's most-used tag in {source} is one of {tags}"
            )
        rule = f"most-used tag in {source} (after the test hold-out)"
        entry[new_type] = {"tags": tags, "items": n, "rule": rule}
    return out, entry


# ----------------------------------------------------------------------------- helpers


def _held_out_rows(
    inter: pl.DataFrame, test_fraction: float, seed: int, pair: list[str] = PAIR
) -> pl.Series:
    """Boolean mask of the rows whose ``pair`` (default ``(user, item)``) is held out; the
    hold-out is drawn per value of ``pair[0]``."""
    pairs = inter.select(pair).unique().sort(pair)
    rng = np.random.default_rng(seed)
    pairs = pairs.with_columns(_key=pl.Series(rng.random(pairs.height)))
    ranked = pairs.with_columns(
        _rank=pl.col("_key").rank("ordinal").over(pair[0]),
        _n=pl.len().over(pair[0]),
    )
    # round half up, at least 1 and at most n - 1 (users with one item keep it in train)
    n_test = ((pl.col("_n") * test_fraction + 0.5).floor().cast(pl.Int64)).clip(1, None)
    n_test = pl.min_horizontal(n_test, pl.col("_n") - 1)
    held = ranked.filter(pl.col("_rank") <= n_test).select(pair).with_columns(_t=pl.lit(True))
    flagged = inter.select(pair).join(held, on=pair, how="left", maintain_order="left")
    return flagged["_t"].fill_null(False).alias("in_test")


def _side_counts(inter: pl.DataFrame, items: pl.DataFrame) -> dict[str, Any]:
    typed = inter.join(items.select("item_id", "item_type"), on="item_id")
    per_type = typed.group_by("item_type").agg(
        pl.len().alias("rows"), pl.struct(PAIR).n_unique().alias("pairs")
    )
    return {
        "interactions": inter.height,
        "pairs": inter.select(PAIR).unique().height,
        "users": inter["user_id"].n_unique(),
        "per_type": {
            t: {"interactions": r, "pairs": p} for t, r, p in per_type.sort("item_type").iter_rows()
        },
    }
