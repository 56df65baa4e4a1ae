"""The dataset contract: read, validate and normalize a catalog + its listening logs.

A dataset is a directory with

* ``items.parquet`` (or ``.csv``): ``item_id`` (str, unique), ``item_type`` (str),
  ``title`` (str, may be empty), optional ``description`` (str), optional ``tags``
  (list of str or ``|``-separated str); further columns are kept as item features.
* ``interactions.parquet`` (or ``.csv``, optional: a catalog-only dataset has none):
  ``user_id`` (str), ``item_id`` (str), ``weight`` (float >= 0, default 1),
  ``signal`` (str, default ``stream``), optional ``ts`` (unix seconds or datetime).
* ``users.parquet`` (optional): ``user_id`` + feature columns.
* ``queries.parquet`` (optional): ``query`` (str), ``item_id`` (str).

Every violation raises :class:`~graphs.errors.ContractError` with one line naming
the file, the column and an example offending row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from graphs.errors import ContractError, contract_error

TEXT_COLUMNS = ("title", "description")
DEFAULT_SIGNAL = "stream"


@dataclass
class Dataset:
    """A validated dataset. Frames are normalized (see module docstring)."""

    items: pl.DataFrame
    interactions: pl.DataFrame | None = None
    users: pl.DataFrame | None = None
    queries: pl.DataFrame | None = None
    path: Path | None = None
    dropped_unknown: dict[str, int] = field(default_factory=dict)

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
    ds = Dataset(items=items, path=path)

    if (f := _find(path, "interactions")) is not None:
        inter = normalize_interactions(_read_table(f), f.name)
        ds.interactions, ds.dropped_unknown["interactions"] = _check_known(
            inter, known, f.name, drop_unknown
        )
    if (f := _find(path, "users")) is not None:
        ds.users = normalize_users(_read_table(f), f.name)
    if (f := _find(path, "queries")) is not None:
        q = normalize_queries(_read_table(f), f.name)
        ds.queries, ds.dropped_unknown["queries"] = _check_known(q, known, f.name, drop_unknown)
    return ds


def read_items(path: str | Path) -> pl.DataFrame:
    """Only the validated items table of the dataset directory ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise ContractError(f"{path}: not a dataset directory")
    items_file = _find(path, "items")
    if items_file is None:
        raise ContractError(f"{path}: no items.parquet or items.csv")
    return normalize_items(_read_table(items_file), items_file.name)


def has_items(path: str | Path) -> bool:
    """Whether ``path`` is a directory with an items table."""
    return Path(path).is_dir() and _find(Path(path), "items") is not None


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
    _no_nulls(df, file, ["item_id", "item_type"])
    _no_empty_strings(df, file, ["item_id", "item_type"])
    dup = df.with_row_index("_row").filter(pl.col("item_id").is_duplicated())
    if dup.height:
        raise _example(dup, file, "item_id", "duplicate item_id")
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
    _no_nulls(df, file, ["user_id", "item_id"])
    df = df.with_columns(
        _number(df, file, "weight", pl.Float64).fill_null(1.0)
        if "weight" in df.columns
        else pl.lit(1.0, pl.Float64).alias("weight"),
        pl.col("signal").fill_null(DEFAULT_SIGNAL)
        if "signal" in df.columns
        else pl.lit(DEFAULT_SIGNAL).alias("signal"),
        _timestamp(df, file) if "ts" in df.columns else pl.lit(None, pl.Int64).alias("ts"),
    )
    bad = df.with_row_index("_row").filter(
        pl.col("weight").is_nan() | pl.col("weight").is_infinite() | (pl.col("weight") < 0)
    )
    if bad.height:
        raise _example(bad, file, "weight", "weight must be a finite number >= 0")
    front = ["user_id", "item_id", "weight", "signal", "ts"]
    return df.select(front + [c for c in df.columns if c not in front])


def normalize_users(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Validate a users table (``user_id`` unique str + feature columns)."""
    _require(df, file, ["user_id"])
    df = _as_text(df, file, "user_id")
    _no_nulls(df, file, ["user_id"])
    dup = df.with_row_index("_row").filter(pl.col("user_id").is_duplicated())
    if dup.height:
        raise _example(dup, file, "user_id", "duplicate user_id")
    return df


def normalize_queries(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Validate a queries table (``query`` str, ``item_id`` str)."""
    _require(df, file, ["query", "item_id"])
    df = _as_text(_as_text(df, file, "query"), file, "item_id")
    _no_nulls(df, file, ["query", "item_id"])
    return df


# ----------------------------------------------------------------------------- helpers


def _find(path: Path, stem: str) -> Path | None:
    for ext in (".parquet", ".csv"):
        if (path / f"{stem}{ext}").exists():
            return path / f"{stem}{ext}"
    return None


def _read_table(f: Path) -> pl.DataFrame:
    try:
        if f.suffix == ".csv":
            raw = f.read_bytes()
            _check_utf8(raw, f.name)
            df = pl.read_csv(raw, infer_schema=False)
        else:
            df = pl.read_parquet(f)
    except ContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user error here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError(f"{f.name}: cannot be read ({first})") from exc
    if df.height == 0:
        raise ContractError(f"{f.name}: table is empty")
    return df


def _check_utf8(raw: bytes, file: str) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line_end = raw.find(b"\n", exc.start)
        line = raw[line_start : line_end if line_end >= 0 else len(raw)]
        header = raw[: raw.find(b"\n")].decode("utf-8", "replace").strip().split(",")
        col_pos = raw[line_start : exc.start].count(b",")
        column = header[col_pos] if col_pos < len(header) else None
        row = raw[:line_start].count(b"\n") - 1
        raise contract_error(
            file,
            column,
            "undecodable text (not UTF-8)",
            {"line": line.decode("utf-8", "replace")},
            row,
        ) from None


def _require(df: pl.DataFrame, file: str, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ContractError(
            f"{file}, column '{missing[0]}': missing required column "
            f"(columns present: {', '.join(df.columns)})"
        )


def _example(bad: pl.DataFrame, file: str, column: str, problem: str) -> ContractError:
    row = bad.row(0, named=True)
    row_number = row.pop("_row", None)
    shown = {k: v for k, v in row.items() if not k.startswith("_")}
    keep = [column] + [k for k in shown if k != column][:3]
    return contract_error(
        file, column, problem, {k: shown[k] for k in keep if k in shown}, row_number
    )


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
    bad = df.with_row_index("_row")
    raise _example(bad, file, col, f"expected a string column, got {dtype}")


def _utf8(value: bytes | None) -> bool:
    try:
        if value is not None:
            value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _no_nulls(df: pl.DataFrame, file: str, cols: list[str]) -> None:
    for col in cols:
        bad = df.with_row_index("_row").filter(pl.col(col).is_null())
        if bad.height:
            raise _example(bad, file, col, "missing value")


def _no_empty_strings(df: pl.DataFrame, file: str, cols: list[str]) -> None:
    for col in cols:
        bad = df.with_row_index("_row").filter(pl.col(col).str.strip_chars() == "")
        if bad.height:
            raise _example(bad, file, col, "empty value")


def _number(df: pl.DataFrame, file: str, col: str, dtype: pl.DataType) -> pl.Expr:
    src = df.schema[col]
    if src.is_numeric() or src == pl.Null:
        return pl.col(col).cast(dtype)
    if src == pl.Utf8:
        cast = pl.col(col).str.strip_chars().cast(dtype, strict=False)
        bad = df.with_row_index("_row").filter(
            pl.col(col).is_not_null() & (pl.col(col).str.strip_chars() != "") & cast.is_null()
        )
        if bad.height:
            raise _example(bad, file, col, "not a number")
        return cast
    raise _example(df.with_row_index("_row"), file, col, f"expected a number, got {src}")


def _timestamp(df: pl.DataFrame, file: str) -> pl.Expr:
    src = df.schema["ts"]
    if isinstance(src, pl.Datetime):
        return pl.col("ts").dt.epoch("s").alias("ts")
    if src == pl.Date:
        return pl.col("ts").cast(pl.Datetime("us")).dt.epoch("s").alias("ts")
    if src.is_numeric() or src == pl.Null:
        bad = (
            df.with_row_index("_row").filter(pl.col("ts").is_nan())
            if src.is_float()
            else df.head(0)
        )
        if bad.height:
            raise _example(bad, file, "ts", "timestamp is NaN")
        return pl.col("ts").cast(pl.Int64).alias("ts")
    if src == pl.Utf8:
        s = pl.col("ts").str.strip_chars()
        parsed = pl.coalesce(
            s.cast(pl.Int64, strict=False),
            s.str.to_datetime(strict=False, time_zone="UTC").dt.epoch("s"),
        )
        bad = df.with_row_index("_row").filter(
            pl.col("ts").is_not_null() & (s != "") & parsed.is_null()
        )
        if bad.height:
            raise _example(bad, file, "ts", "not unix seconds or an ISO datetime")
        return parsed.alias("ts")
    raise _example(df.with_row_index("_row"), file, "ts", f"expected a timestamp, got {src}")


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
        df.with_row_index("_row"),
        file,
        "tags",
        f"expected a list of strings or a '|'-separated string, got {src}",
    )


def _check_known(
    df: pl.DataFrame,
    known: pl.DataFrame,
    file: str,
    drop: bool,
) -> tuple[pl.DataFrame, int]:
    flagged = df.with_row_index("_row").join(
        known.with_columns(pl.lit(True).alias("_known")),
        on="item_id",
        how="left",
        maintain_order="left",
    )
    unknown = flagged.filter(pl.col("_known").is_null())
    if unknown.height == 0:
        return df, 0
    if not drop:
        raise _example(
            unknown.drop("_known"),
            file,
            "item_id",
            f"{unknown.height} rows reference item_ids not in the items table "
            "(use --drop-unknown to drop them)",
        )
    kept = flagged.filter(pl.col("_known").is_not_null()).drop(["_row", "_known"])
    if kept.height == 0:
        raise ContractError(f"{file}: no rows left after dropping unknown item_ids")
    return kept, unknown.height
