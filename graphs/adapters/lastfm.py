"""Last.fm HetRec 2011 (``hetrec2011-lastfm-2k``) as a contract dataset.

* items: every artist of ``artists.dat`` (``item_id`` = artist id, type ``artist``, title =
  name, ``tags`` = tag values users gave the artist, most used first, ties by value;
  ``url`` kept as a feature column).
* interactions: listening counts (signal ``stream``, weight = count, no ts) and tag
  assignments aggregated per (user, artist) (signal ``tag``, weight = number of
  assignments, ts = UTC midnight of the earliest plausible assignment date).
* queries: every tag value used on at least :data:`MIN_QUERY_ARTISTS` artists retrieves
  those artists.

Data quirks (counted in the manifest ``summary``): 1,538 tag assignments reference artist
ids missing from ``artists.dat`` and are dropped; 5 assignments are dated 1956-1979,
before Last.fm existed: they are kept but their date is ignored; the ``day`` field is 1
in 98% of rows (month resolution). ``tags.dat`` and ``user_taggedartists.dat`` are
latin-1, ``artists.dat`` is UTF-8 with unbalanced ``"`` in names (read without quoting).
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from audiograph.core.errors import ContractError, contract_error
from audiograph.graphs.adapters.common import claim_dataset, save_dataset

MIN_QUERY_ARTISTS = 5
# Last.fm was founded in 2002; the data set was released in May 2011.
PLAUSIBLE_DATES = (date(2002, 1, 1), date(2011, 5, 31))
_INT, _STR = pl.Int64, pl.Utf8
VERTICAL = "vertical"
_FILES = {  # file: (encoding, columns kept)
    "artists.dat": ("utf-8", {"id": _INT, "name": _STR, "url": _STR}),
    "user_artists.dat": ("utf-8", dict.fromkeys(("userID", "artistID", "weight"), _INT)),
    "tags.dat": ("latin-1", {"tagID": _INT, "tagValue": _STR}),
    "user_taggedartists.dat": (
        "latin-1",
        dict.fromkeys(("userID", "artistID", "tagID", "day", "month", "year"), _INT),
    ),
}


def prepare_lastfm(
    src: str | Path, out: str | Path, vertical: list[str] | None = None
) -> dict[str, Any]:
    """Convert the Last.fm HetRec 2011 files in ``src`` into a dataset written to ``out``.

    ``vertical``: tags; artists whose most-used tag (the first of their ``tags``) is one
    of them get item type ``vertical`` instead of ``artist`` (a second, sparser content
    type whose items keep all their text), e.g. ``["electronic"]``. The tags are counted
    over ALL tag assignments, including those a later split puts into its test part, so
    this is for exploring the data; a leak-free benchmark prepares without ``vertical``
    and lets the split assign the type from its train part's tags only
    (``split --retype vertical=electronic``, see
    :class:`~audiograph.graphs.config.SplitConfig`).

    Returns the manifest written by :func:`~audiograph.graphs.adapters.common.save_dataset`; its
    ``summary`` holds the rows dropped by reason, date checks and query counts.
    Raises :class:`~audiograph.core.errors.ContractError` for a missing or malformed source file.
    """
    src = Path(src)
    claim_dataset(out, src)
    for name in _FILES:
        if not (src / name).is_file():
            raise ContractError(f"{name}: Last.fm source file not found in {src}")
    artists, plays, tags, assigned = (_read(src / f, *spec) for f, spec in _FILES.items())
    for df, file, key in ((artists, "artists.dat", "id"), (tags, "tags.dat", "tagID")):
        dup = df.with_row_index("_row").filter(pl.col(key).is_duplicated())
        if dup.height:
            row = dup.row(0, named=True)
            raise contract_error(file, key, f"duplicate {key}", row, row.pop("_row"))

    known = artists.select(pl.col("id").alias("artistID"))
    plays_known = plays.join(known, on="artistID", how="semi")
    tagged = assigned.join(known, on="artistID", how="semi")
    used = tagged.join(tags, on="tagID", how="inner")
    day = pl.format("{}-{}-{}", "year", "month", "day").str.to_date("%Y-%m-%d", strict=False)
    used = used.with_columns(day.alias("date"))
    plausible = pl.col("date").is_between(*PLAUSIBLE_DATES)
    ts = pl.col("date").filter(plausible).min().cast(pl.Datetime("us")).dt.epoch("s")

    per_tag = used.group_by("artistID", "tagValue").len("n")
    item_tags = per_tag.group_by("artistID").agg(
        pl.col("tagValue").sort_by("n", "tagValue", descending=[True, False]).alias("tags")
    )
    items = artists.join(
        item_tags, left_on="id", right_on="artistID", how="left", maintain_order="left"
    ).select(
        item_id=pl.col("id").cast(_STR),
        item_type=pl.lit("artist"),
        title=pl.col("name"),
        description=pl.lit(""),
        tags=pl.col("tags").fill_null(pl.lit([], pl.List(_STR))),
        url=pl.col("url"),
    )
    if vertical:
        wanted = [t.strip() for t in vertical if t.strip()]
        items = items.with_columns(
            item_type=pl.when(pl.col("tags").list.first().is_in(wanted))
            .then(pl.lit(VERTICAL))
            .otherwise(pl.lit("artist"))
        )
        if not (items["item_type"] == VERTICAL).any():
            raise ContractError(f"--vertical: no artist's most-used tag is one of {wanted}")

    stream = _interactions(plays_known.with_columns(ts=pl.lit(None, _INT)), "stream")
    per_pair = used.group_by("userID", "artistID").agg(
        pl.len().alias("weight"), ts.alias("ts"), pl.col("tagValue").sort().alias("tags")
    )  # tags: what this user gave this artist (a split recounts item tags per side)
    tag_rows = _interactions(per_pair.sort("userID", "artistID"), "tag").with_columns(
        tags=per_pair.sort("userID", "artistID")["tags"]
    )
    stream = stream.with_columns(tags=pl.lit(None, pl.List(_STR)))
    interactions = pl.concat([stream, tag_rows])

    pairs = used.select("tagValue", "artistID").unique()
    queries = (
        pairs.filter(pl.len().over("tagValue") >= MIN_QUERY_ARTISTS)
        .sort("tagValue", "artistID")
        .select(query=pl.col("tagValue"), item_id=pl.col("artistID").cast(_STR))
    )

    summary = {
        "artists": artists.height,
        "stream_rows": stream.height,
        "tag_rows": tag_rows.height,
        "tag_assignments": assigned.height,
        "tag_assignments_used": used.height,
        "dropped": {
            "plays_unknown_artist": plays.height - plays_known.height,
            "tag_assignments_unknown_artist": assigned.height - tagged.height,
            "tag_assignments_unknown_tag": tagged.height - used.height,
        },
        "tag_dates_invalid": used["date"].null_count(),
        "tag_dates_implausible_ignored": used.filter(~plausible).height,
        "artists_with_tags": item_tags.height,
        "min_query_artists": MIN_QUERY_ARTISTS,
        "queries": queries.height,
        "query_strings": queries["query"].n_unique(),
        "vertical": None
        if not vertical
        else {
            "tags": vertical,
            "artists": int((items["item_type"] == VERTICAL).sum()),
            "rule": "an artist whose most-used tag (over all tag assignments) is in tags",
        },
    }
    return save_dataset(
        out, "lastfm", items, interactions, queries=queries, summary=summary, src=src
    )


def _interactions(df: pl.DataFrame, signal: str) -> pl.DataFrame:
    return df.select(
        user_id=pl.col("userID").cast(_STR),
        item_id=pl.col("artistID").cast(_STR),
        weight=pl.col("weight").cast(pl.Float64),
        signal=pl.lit(signal),
        ts=pl.col("ts").cast(_INT),
    )


def _read(path: Path, encoding: str, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Read a tab-separated file with a header; keep ``columns`` and cast them strictly."""
    name = path.name
    try:
        text = path.read_bytes().decode(encoding)
        df = pl.read_csv(io.StringIO(text), separator="\t", quote_char=None, infer_schema=False)
    except (UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ContractError(f"{name}: cannot be read ({first})") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ContractError(
            f"{name}, column '{missing[0]}': missing required column "
            f"(columns present: {', '.join(df.columns)})"
        )
    df = df.select(list(columns)).with_row_index("_row")
    for col, dtype in columns.items():
        if dtype == _STR:
            continue
        cast = pl.col(col).str.strip_chars().cast(dtype, strict=False)
        bad = df.filter(cast.is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise contract_error(name, col, "missing or not an integer", row, row.pop("_row"))
        df = df.with_columns(cast)
    return df.drop("_row")
