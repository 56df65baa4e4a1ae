"""Douban music + book ratings (GA-DTCDR release) as a contract dataset.

Two item types share one user id space: ``music_ratings.tsv`` and ``book_ratings.tsv``
(tab-separated, no header: ``user, item, rating`` with ratings 1-5). Item ids are per
domain, so items become ``music:<id>`` and ``book:<id>`` (no text: empty titles); every
item that appears in a ratings file is an item. Interactions: ``user_id`` = user,
``weight`` = rating, signal ``rating``, no timestamps.

Duplicate (user, item) rows, if any, are merged into one row with their mean rating and
counted in the manifest ``summary`` (the released files have none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from audiograph.core.errors import ContractError, contract_error
from audiograph.graphs.adapters.common import claim_dataset, save_dataset

DOMAINS = (("music", "music_ratings.tsv"), ("book", "book_ratings.tsv"))
RATING_RANGE = (1, 5)
_COLUMNS = ("user", "item", "rating")


def prepare_douban(src: str | Path, out: str | Path) -> dict[str, Any]:
    """Convert the Douban music/book ratings in ``src`` into a dataset written to ``out``.

    Returns the manifest written by :func:`~audiograph.graphs.adapters.common.save_dataset`; its
    ``summary`` holds ratings, items and users per domain, shared users and merged
    duplicates. Raises :class:`~audiograph.core.errors.ContractError` for a missing or malformed
    source file or a rating outside 1-5.
    """
    src = Path(src)
    claim_dataset(out, src)
    for _, name in DOMAINS:
        if not (src / name).is_file():
            raise ContractError(f"{name}: Douban source file not found in {src}")
    frames, summary = [], {"ratings": {}, "duplicates_merged": {}, "users": {}}
    for domain, name in DOMAINS:
        df = _read(src / name)
        merged = df.group_by("user", "item", maintain_order=True).agg(pl.col("rating").mean())
        summary["ratings"][domain] = df.height
        summary["duplicates_merged"][domain] = df.height - merged.height
        summary["users"][domain] = merged["user"].n_unique()
        frames.append(merged.with_columns(item_type=pl.lit(domain)))
    ratings = pl.concat(frames).with_columns(item_id=pl.format("{}:{}", "item_type", "item"))

    items = (
        ratings.select("item_type", "item", "item_id")
        .unique("item_id")
        .sort(
            pl.col("item_type").replace_strict({d: i for i, (d, _) in enumerate(DOMAINS)}), "item"
        )
        .select("item_id", "item_type", title=pl.lit(""))
    )
    interactions = ratings.select(
        user_id=pl.col("user").cast(pl.Utf8),
        item_id="item_id",
        weight=pl.col("rating").cast(pl.Float64),
        signal=pl.lit("rating"),
        ts=pl.lit(None, pl.Int64),
    )

    per_user = ratings.group_by("user").agg(pl.col("item_type").n_unique().alias("n"))
    summary["users"]["all"] = per_user.height
    summary["users"]["shared"] = per_user.filter(pl.col("n") == len(DOMAINS)).height
    summary["interactions"] = interactions.height
    return save_dataset(out, "douban", items, interactions, summary=summary, src=src)


def _read(path: Path) -> pl.DataFrame:
    """Read one headerless ``user, item, rating`` file as integers; check the rating range."""
    try:
        df = pl.read_csv(path.read_bytes(), separator="\t", has_header=False, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ContractError(f"{path.name}: cannot be read ({first})") from exc
    if df.width != len(_COLUMNS):
        raise ContractError(
            f"{path.name}: expected {len(_COLUMNS)} tab-separated columns "
            f"(user, item, rating), found {df.width}"
        )
    df = df.rename(dict(zip(df.columns, _COLUMNS, strict=True))).with_row_index("_row")
    for col in _COLUMNS:
        cast = pl.col(col).str.strip_chars().cast(pl.Int64, strict=False)
        bad = df.filter(cast.is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise contract_error(path.name, col, "missing or not an integer", row, row.pop("_row"))
        df = df.with_columns(cast)
    bad = df.filter(~pl.col("rating").is_between(*RATING_RANGE))
    if bad.height:
        row = bad.row(0, named=True)
        raise contract_error(path.name, "rating", "rating outside 1-5", row, row.pop("_row"))
    return df.drop("_row")
