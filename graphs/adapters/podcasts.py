"""Apple Podcasts catalog (``podcasts.csv``) as a catalog-only contract dataset.

Items: one ``podcast`` per show, ``item_id`` = ``podcast:<itunes_id>``, title and
description as text, ``tags`` empty. ``genre`` is kept only as a feature column (with
``producer``, ``num_episodes``, ``rating``, ``num_reviews``, ``link``): it is the
evaluation label for probing embeddings, so it never enters the text or the tags.
There are no interactions.

Text cleaning: surrounding whitespace is stripped and invisible bidi-embedding /
zero-width marks (136 titles are wrapped in U+202A ... U+202C by the scrape) are
removed. A show listed twice (same ``itunes_id``) keeps its first row; the count is in
the manifest ``summary`` (the released file has none). ``rating`` and ``num_reviews``
are missing for 21 shows (no reviews yet) and stay null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from audiograph.core.errors import ContractError, contract_error
from audiograph.graphs.adapters.common import claim_dataset, save_dataset
from audiograph.graphs.tables import read_csv

FILE = "podcasts.csv"
TEXT = ("title", "producer", "genre", "description", "link")
NUMBERS = {
    "num_episodes": pl.Int64,
    "rating": pl.Float64,
    "num_reviews": pl.Float64,
    "itunes_id": pl.Int64,
}
# Bidi embeddings/overrides/isolates, zero-width space, byte-order mark.
INVISIBLE = "[\u202a-\u202e\u2066-\u2069\u200b\ufeff]"


def prepare_podcasts(src: str | Path, out: str | Path) -> dict[str, Any]:
    """Convert ``podcasts.csv`` in ``src`` into a catalog-only dataset written to ``out``.

    Returns the manifest written by :func:`~audiograph.graphs.adapters.common.save_dataset`; its
    ``summary`` holds shows read, duplicates dropped, cleaned titles and missing ratings.
    Raises :class:`~audiograph.core.errors.ContractError` for a missing or malformed source file.
    """
    claim_dataset(out, src)
    path = Path(src) / FILE
    if not path.is_file():
        raise ContractError(f"{FILE}: podcast source file not found in {Path(src)}")
    try:
        df = read_csv(path.read_bytes(), FILE)
    except pl.exceptions.PolarsError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ContractError(f"{FILE}: cannot be read ({first})") from exc
    missing = [c for c in (*TEXT, *NUMBERS) if c not in df.columns]
    if missing:
        raise ContractError(
            f"{FILE}, column '{missing[0]}': missing required column "
            f"(columns present: {', '.join(df.columns)})"
        )
    df = df.with_row_index("_row")
    for col, dtype in NUMBERS.items():
        text = pl.col(col).str.strip_chars()
        cast = text.cast(dtype, strict=False)
        required = pl.lit(col == "itunes_id")  # the other numbers may be missing
        bad = df.filter(cast.is_null() & (required | (text.is_not_null() & (text != ""))))
        if bad.height:
            row = bad.row(0, named=True)
            raise contract_error(FILE, col, "missing or not a number", row, row.pop("_row"))
        df = df.with_columns(cast)

    cleaned = df.with_columns(
        pl.col(c).str.replace_all(INVISIBLE, "").str.strip_chars() for c in TEXT
    )
    shows = cleaned.unique("itunes_id", keep="first", maintain_order=True)
    items = shows.select(
        item_id=pl.format("podcast:{}", "itunes_id"),
        item_type=pl.lit("podcast"),
        title="title",
        description="description",
        tags=pl.lit([], pl.List(pl.Utf8)),
        genre="genre",
        producer="producer",
        num_episodes="num_episodes",
        rating="rating",
        num_reviews=pl.col("num_reviews").round().cast(pl.Int64),
        link="link",
    )
    summary = {
        "shows": df.height,
        "dropped": {"duplicate_itunes_id": df.height - shows.height},
        "titles_cleaned": cleaned.filter(pl.col("title") != df["title"]).height,
        "descriptions_cleaned": cleaned.filter(pl.col("description") != df["description"]).height,
        "missing_rating": items["rating"].null_count(),
        "missing_num_reviews": items["num_reviews"].null_count(),
        "genres": items["genre"].n_unique(),
    }
    return save_dataset(out, "podcasts", items, None, summary=summary, src=src)
