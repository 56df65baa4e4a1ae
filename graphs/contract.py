"""The dataset contract: read, validate and normalize a catalog + its listening logs.

A dataset is a directory with

* ``items.parquet`` (or ``.csv``): ``item_id`` (str, unique), ``item_type`` (str, no
  ``__`` and no trailing ``_``: edge types are named ``<src>__co__<dst>``), ``title``
  (str, may be empty), optional ``description`` (str), optional ``tags`` (list of str or
  ``|``-separated str); further columns are kept as item features.
* ``interactions.parquet`` (or ``.csv``, optional: a catalog-only dataset has none):
  ``user_id`` (str), ``item_id`` (str), ``weight`` (float >= 0, default 1),
  ``signal`` (str, default ``stream``), optional ``ts`` (unix seconds or datetime).
* ``users.parquet`` (optional): ``user_id`` + feature columns.
* ``queries.parquet`` (optional): ``query`` (str), ``item_id`` (str).

Ids and queries are non-empty strings. Extra columns may have any name (none clashes
with an internal one).

Every violation raises :class:`~audiograph.core.errors.ContractError` with one line naming
the file, the column and an example offending row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from audiograph.core.errors import ContractError, contract_error
from audiograph.graphs.tables import find_table, read_table

TEXT_COLUMNS = ("title", "description")
DEFAULT_SIGNAL = "stream"
TABLES = ("items", "interactions", "users", "queries")
INTERACTION_SCHEMA = {
    "user_id": pl.Utf8,
    "item_id": pl.Utf8,
    "weight": pl.Float64,
    "signal": pl.Utf8,
    "ts": pl.Int64,
}
"""The columns of a normalized interactions table (plus ``tags`` where the source has them)."""


@dataclass
class Dataset:
    """A validated dataset. Frames are normalized (see module docstring)."""

    items: pl.DataFrame
    interactions: pl.DataFrame | None = None
    users: pl.DataFrame | None = None
    queries: pl.DataFrame | None = None
    path: Path | None = None
    dropped_unknown: dict[str, int] = field(default_factory=dict)
    #: file name of each table read, e.g. ``{"interactions": "interactions.csv"}``
    files: dict[str, str] = field(default_factory=dict)

    @property
    def item_types(self) -> list[str]:
        """Item types in order of first appearance in the items table."""
        return self.items["item_type"].unique(maintain_order=True).to_list()


def read_dataset(path: str | Path, drop_unknown: bool = False) -> Dataset:
    """Read and validate the dataset directory ``path``.

    Args:
        path: directory laid out as in the module docstring.
        drop_unknown: drop (and count in ``Dataset.dropped_unknown``) interactions and
            queries whose ``item_id`` is not in the items table instead of failing.
    """
    path = Path(path)
    items = read_items(path)
    known = items.select("item_id")
    found = {t: f for t in TABLES if (f := find_table(path, t)) is not None}
    ds = Dataset(items=items, path=path, files={t: f.name for t, f in found.items()})
    if (f := found.get("interactions")) is not None:
        inter = normalize_interactions(read_table(f), f.name)
        ds.interactions, ds.dropped_unknown["interactions"] = _check_known(
            inter, known, f.name, drop_unknown
        )
    if (f := found.get("users")) is not None:
        ds.users = normalize_users(read_table(f), f.name)
    if (f := found.get("queries")) is not None:
        q = normalize_queries(read_table(f), f.name)
        ds.queries, ds.dropped_unknown["queries"] = _check_known(q, known, f.name, drop_unknown)
    return ds


def read_items(path: str | Path) -> pl.DataFrame:
    """Only the validated items table of the dataset directory ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise ContractError(f"{path}: not a dataset directory")
    items_file = find_table(path, "items")
    if items_file is None:
        raise ContractError(f"{path}: no items.parquet or items.csv")
    return normalize_items(read_table(items_file), items_file.name)


def has_items(path: str | Path) -> bool:
    """Whether ``path`` is a directory with an items table."""
    return Path(path).is_dir() and find_table(Path(path), "items") is not None


def write_dataset(
    out_dir: str | Path,
    items: pl.DataFrame,
    interactions: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
    queries: pl.DataFrame | None = None,
) -> None:
    """Validate the frames and write them as parquet files into ``out_dir`` (must exist)."""
    out = Path(out_dir)
    items = normalize_items(items, "items.parquet")
    items.write_parquet(out / "items.parquet")
    known = items.select("item_id")
    if interactions is not None:
        inter = normalize_interactions(interactions, "interactions.parquet")
        _check_known(inter, known, "interactions.parquet", False)[0].write_parquet(
            out / "interactions.parquet"
        )
    if users is not None:
        normalize_users(users, "users.parquet").write_parquet(out / "users.parquet")
    if queries is not None:
        q = normalize_queries(queries, "queries.parquet")
        _check_known(q, known, "queries.parquet", False)[0].write_parquet(out / "queries.parquet")


# ----------------------------------------------------------------------------- tables


def normalize_items(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Validate an items table; returns it with ``title``/``description`` as non-null str
    and ``tags`` as ``list[str]``."""
    _require(df, file, ["item_id", "item_type", "title"])
    for col in ("item_id", "item_type", "title", "description"):
        if col in df.columns:
            df = _as_text(df, file, col)
    _no_missing(df, file, ["item_id", "item_type"])
    t = pl.col("item_type")
    _fail_where(
        df,
        t.str.contains("__", literal=True) | t.str.ends_with("_"),
        file,
        "item_type",
        "item_type must not contain '__' or end with '_' (edge types are '<src>__co__<dst>')",
    )
    _fail_where(df, pl.col("item_id").is_duplicated(), file, "item_id", "duplicate item_id")
    df = df.with_columns(pl.col("title").fill_null(""))
    df = df.with_columns(
        pl.col("description").fill_null("")
        if "description" in df.columns
        else pl.lit("").alias("description")
    )
    df = df.with_columns(_tags_expr(df, file))
    front = ["item_id", "item_type", "title", "description", "tags"]
    return df.select(front + [c for c in df.columns if c not in front])


def normalize_interactions(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Validate an interactions table; returns ``user_id, item_id, weight (f64),
    signal (str), ts (i64 unix seconds, nullable)`` plus any extra columns."""
    _require(df, file, ["user_id", "item_id"])
    for col in ("user_id", "item_id", "signal"):
        if col in df.columns:
            df = _as_text(df, file, col)
    _no_missing(df, file, ["user_id", "item_id"])
    df = df.with_columns(
        _number(df, file, "weight", pl.Float64).fill_null(1.0)
        if "weight" in df.columns
        else pl.lit(1.0, pl.Float64).alias("weight"),
        pl.col("signal").fill_null(DEFAULT_SIGNAL)
        if "signal" in df.columns
        else pl.lit(DEFAULT_SIGNAL).alias("signal"),
        _timestamp(df, file) if "ts" in df.columns else pl.lit(None, pl.Int64).alias("ts"),
    )
    w = pl.col("weight")
    bad = w.is_nan() | w.is_infinite() | (w < 0)
    _fail_where(df, bad, file, "weight", "weight must be a finite number >= 0")
    front = list(INTERACTION_SCHEMA)
    return df.select(front + [c for c in df.columns if c not in front])


def normalize_users(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Validate a users table (``user_id`` unique str + feature columns)."""
    _require(df, file, ["user_id"])
    df = _as_text(df, file, "user_id")
    _no_missing(df, file, ["user_id"])
    _fail_where(df, pl.col("user_id").is_duplicated(), file, "user_id", "duplicate user_id")
    return df


def normalize_queries(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Validate a queries table (``query`` str, ``item_id`` str)."""
    _require(df, file, ["query", "item_id"])
    df = _as_text(_as_text(df, file, "query"), file, "item_id")
    _no_missing(df, file, ["query", "item_id"])
    return df


# ----------------------------------------------------------------------------- helpers
# Offending rows are located with ``arg_where`` on the user's own frame, never through an
# added helper column, so no user column name (``_row``, ...) can collide with ours.


def _require(df: pl.DataFrame, file: str, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ContractError(
            f"{file}, column '{missing[0]}': missing required column "
            f"(columns present: {', '.join(df.columns)})"
        )


def _fail_where(df: pl.DataFrame, bad: pl.Expr, file: str, column: str, problem: str) -> None:
    """Raise for the first row where ``bad`` holds (null counts as false)."""
    rows = df.select(pl.arg_where(bad.fill_null(False))).to_series()
    if rows.len():
        raise _example(df, int(rows[0]), file, column, problem)


def _example(df: pl.DataFrame, row: int, file: str, column: str, problem: str) -> ContractError:
    values = df.row(row, named=True)
    keep = [column] + [k for k in values if k != column][:3]
    return contract_error(file, column, problem, {k: values[k] for k in keep}, row)


def _as_text(df: pl.DataFrame, file: str, col: str) -> pl.DataFrame:
    dtype = df.schema[col]
    if dtype in (pl.Utf8, pl.Null):
        return df.with_columns(pl.col(col).cast(pl.Utf8))
    if dtype == pl.Binary:
        try:
            return df.with_columns(pl.col(col).cast(pl.Utf8, strict=True))
        except Exception:  # noqa: BLE001 - find the first offending row for the message
            row = next(i for i, v in enumerate(df[col].to_list()) if not _utf8(v))
            raise contract_error(
                file, col, "undecodable text (not UTF-8)", {col: df[col][row]}, row
            ) from None
    raise _example(df, 0, file, col, f"expected a string column, got {dtype}")


def _utf8(value: bytes | None) -> bool:
    try:
        if value is not None:
            value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _no_missing(df: pl.DataFrame, file: str, cols: list[str]) -> None:
    """Required string columns: no nulls, no empty or whitespace-only values."""
    for col in cols:
        _fail_where(df, pl.col(col).is_null(), file, col, "missing value")
    for col in cols:
        _fail_where(df, pl.col(col).str.strip_chars() == "", file, col, "empty value")


def _number(df: pl.DataFrame, file: str, col: str, dtype: pl.DataType) -> pl.Expr:
    src = df.schema[col]
    if src.is_numeric() or src == pl.Null:
        return pl.col(col).cast(dtype)
    if src == pl.Utf8:
        s = pl.col(col).str.strip_chars()
        cast = s.cast(dtype, strict=False)
        _fail_where(df, (s != "") & cast.is_null(), file, col, "not a number")
        return cast
    raise _example(df, 0, file, col, f"expected a number, got {src}")


def _timestamp(df: pl.DataFrame, file: str) -> pl.Expr:
    """``ts`` as i64 unix seconds: from a datetime/date, a number (NaN, inf and values
    beyond the int64 range are errors) or a string of either."""
    src, ts = df.schema["ts"], pl.col("ts")
    given = ts  # the non-missing values, which must all convert
    if isinstance(src, pl.Datetime):
        return ts.dt.epoch("s").alias("ts")
    if src == pl.Date:
        return ts.cast(pl.Datetime("us")).dt.epoch("s").alias("ts")
    if src.is_numeric() or src == pl.Null:
        seconds = ts.cast(pl.Int64, strict=False)
        problem = "timestamp must be finite unix seconds within the int64 range"
    elif src == pl.Utf8:
        s = ts.str.strip_chars()
        seconds = pl.coalesce(
            s.cast(pl.Int64, strict=False),
            s.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False),
            s.str.to_datetime(strict=False, time_zone="UTC").dt.epoch("s"),
        )
        given = pl.when(s != "").then(s)
        problem = "not unix seconds (finite, within the int64 range) or an ISO datetime"
    else:
        raise _example(df, 0, file, "ts", f"expected a timestamp, got {src}")
    _fail_where(df, given.is_not_null() & seconds.is_null(), file, "ts", problem)
    return seconds.alias("ts")


def _tags_expr(df: pl.DataFrame, file: str) -> pl.Expr:
    if "tags" not in df.columns:
        return pl.lit([], pl.List(pl.Utf8)).alias("tags")
    src = df.schema["tags"]
    if src in (pl.Utf8, pl.Null):
        split = (
            pl.col("tags")
            .cast(pl.Utf8)
            .str.split("|")
            .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        )
        return split.fill_null([]).alias("tags")
    if isinstance(src, pl.List) and src.inner in (pl.Utf8, pl.Null):
        return pl.col("tags").cast(pl.List(pl.Utf8)).list.drop_nulls().fill_null([]).alias("tags")
    raise _example(
        df, 0, file, "tags", f"expected a list of strings or a '|'-separated string, got {src}"
    )


def check_signals(present: list[str], wanted: list[str] | None, file: str) -> None:
    """Every signal of ``wanted`` (``--signals``) must occur in the interactions file
    (else the graph silently loses it, or is empty)."""
    if wanted is not None and (missing := [s for s in wanted if s not in present]):
        raise ContractError(
            f"--signals: signal {missing[0]!r} does not occur in {file} "
            f"(present: {', '.join(present)})"
        )


def _check_known(
    df: pl.DataFrame,
    known: pl.DataFrame,
    file: str,
    drop: bool,
) -> tuple[pl.DataFrame, int]:
    is_known = pl.col("item_id").is_in(known["item_id"].implode())
    unknown = df.select(pl.arg_where(~is_known)).to_series()
    if unknown.len() == 0:
        return df, 0
    if not drop:
        raise _example(
            df,
            int(unknown[0]),
            file,
            "item_id",
            f"{unknown.len()} rows reference item_ids not in the items table "
            "(use --drop-unknown to drop them)",
        )
    kept = df.filter(is_known)
    if kept.height == 0:
        raise ContractError(f"{file}: no rows left after dropping unknown item_ids")
    return kept, unknown.len()
