"""Train/test splits of a contract dataset, and per-type downsampling of interactions.

* :func:`split_dataset` — writes ``OUT/train`` and ``OUT/test`` (two full contract
  datasets: items and users copied to both, interactions split) and
  ``OUT/manifest.json``. When every interaction has a timestamp the split is a global
  temporal one (train strictly before the cut, test at or after it); otherwise each user's
  distinct items are held out at random, with every signal of a held-out ``(user, item)``
  pair going to test, so no weak signal leaks the answer into train. Search queries
  (``queries.parquet``) are split per item the same way: each item with ``n >= 2``
  ``(query, item)`` rows holds out ``clip(round_half_up(test_fraction * n), 1, n - 1)``.
* :func:`downsample_type` — keeps a random fraction of one item type's ``(user, item)``
  pairs (all their rows), e.g. to make Douban books a sparse type.

Both are seeded and independent of the row order of the input.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from graphs.atomic import atomic_dir, claim_output, write_json
from graphs.contract import read_dataset, write_dataset
from graphs.errors import ContractError, contract_error

METHODS = ("auto", "temporal", "random")
PAIR = ["user_id", "item_id"]


def split_dataset(
    data_dir: str | Path,
    out_dir: str | Path,
    test_fraction: float = 0.2,
    seed: int = 0,
    quiet: bool = True,
    method: str = "auto",
    downsample: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Split the interactions of the dataset ``data_dir`` into train and test.

    Args:
        data_dir: a contract dataset directory with interactions.
        out_dir: output directory; gets ``train/``, ``test/`` and ``manifest.json``
            (written atomically).
        test_fraction: in (0, 1). Temporal: the cut is the ``1 - test_fraction`` quantile
            of ``ts`` (nearest observed value). Random: each user with ``n >= 2`` distinct
            items holds out ``clip(round_half_up(test_fraction * n), 1, n - 1)`` of them;
            users with one item stay in train.
        seed: seed of the random hold-out (unused by the temporal split).
        quiet: if False, print a one-line summary to stderr.
        method: ``"auto"`` (temporal when every row has a ``ts``, else random),
            ``"temporal"`` or ``"random"``.
        downsample: ``{item_type: keep}``: after the split, keep only this fraction of
            the type's training ``(user, item)`` pairs (:func:`downsample_type`, same seed);
            the test side is untouched. Makes a type sparse, e.g. Douban books.

    Returns:
        The manifest: ``kind="split"``, ``method``, ``cut_ts`` (temporal only),
        ``test_fraction``, ``seed``, and per side (``train``/``test``) the number of rows,
        ``(user, item)`` pairs, users and rows per item type.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ContractError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if method not in METHODS:
        raise ContractError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
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

    cut: int | None = None
    if use == "temporal":
        cut = int(inter["ts"].quantile(1.0 - test_fraction, "nearest"))
        in_test = inter["ts"] >= cut
    else:
        in_test = _held_out_rows(inter, test_fraction, seed)
    train, test = inter.filter(~in_test), inter.filter(in_test)
    q_train = q_test = None
    if ds.queries is not None:
        q_in_test = _held_out_rows(ds.queries, test_fraction, seed, ["item_id", "query"])
        q_train, q_test = ds.queries.filter(~q_in_test), ds.queries.filter(q_in_test)
    for item_type, keep in (downsample or {}).items():
        train = downsample_type(train, ds.items, item_type, keep, seed)
    for name, side in (("train", train), ("test", test)):
        if side.height == 0:
            raise ContractError(
                f"{data_dir}: the {use} split with test_fraction={test_fraction} leaves "
                f"the {name} side empty"
            )

    manifest: dict[str, Any] = {
        "kind": "split",
        "source": str(Path(data_dir).absolute()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": use,
        "cut_ts": cut,
        "test_fraction": test_fraction,
        "seed": seed,
        "downsample": downsample or {},
        "train": _side_counts(train, ds.items),
        "test": _side_counts(test, ds.items),
    }
    if ds.queries is not None:
        manifest["train"]["queries"], manifest["test"]["queries"] = q_train.height, q_test.height
    with atomic_dir(out_dir, "split", [data_dir]) as tmp:
        for name, side, q in (("train", train, q_train), ("test", test, q_test)):
            (tmp / name).mkdir()
            write_dataset(tmp / name, ds.items, side, ds.users, q)
            write_json(
                tmp / name / "manifest.json",
                {"kind": "dataset", "source": f"split:{name}", "counts": manifest[name]},
            )
        write_json(tmp / "manifest.json", manifest)
    if not quiet:
        tr, te = manifest["train"], manifest["test"]
        print(
            f"split ({use}{'' if cut is None else f', cut ts {cut}'}): "
            f"train {tr['interactions']} rows / {tr['pairs']} pairs, "
            f"test {te['interactions']} rows / {te['pairs']} pairs -> {out_dir}",
            file=sys.stderr,
        )
    return manifest


def downsample_type(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    item_type: str,
    keep: float,
    seed: int,
) -> pl.DataFrame:
    """Keep ``round(keep * P)`` of the ``P`` distinct ``(user, item)`` pairs whose item is
    of ``item_type`` (all rows of a kept pair; every other row untouched).

    Args:
        interactions: contract interactions ``[R rows]`` (``user_id``, ``item_id``, ...).
        items: items table (``item_id``, ``item_type``).
        item_type: the type to thin out; must occur in ``items``.
        keep: fraction of pairs kept, in [0, 1].
        seed: sampling seed (the result does not depend on row order).

    Returns:
        The kept rows ``[R' <= R rows]``, in their input order, same columns.
    """
    if not 0.0 <= keep <= 1.0:
        raise ContractError(f"keep must be in [0, 1], got {keep}")
    types = items["item_type"].unique().sort().to_list()
    if item_type not in types:
        raise ContractError(
            f"items.parquet, column 'item_type': no item of type {item_type!r} "
            f"(types: {', '.join(types)})"
        )
    typed = items.filter(pl.col("item_type") == item_type).select("item_id")
    pairs = interactions.join(typed, on="item_id").select(PAIR).unique().sort(PAIR)
    n_keep = _round_half_up(keep * pairs.height)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(pairs.height)[:n_keep])
    dropped = pairs.with_row_index("_i").filter(~pl.col("_i").is_in(chosen)).drop("_i")
    return interactions.join(dropped, on=PAIR, how="anti", maintain_order="left")


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


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))
