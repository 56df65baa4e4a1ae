"""Reading one dataset table (``<stem>.parquet`` or ``<stem>.csv``) into polars.

Every failure is a one-line :class:`~audiograph.core.errors.ContractError` naming the file; CSV
failures also name the 1-based line of the file (undecodable text: the row and column).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from audiograph.core.errors import ContractError, contract_error


def find_table(path: Path, stem: str) -> Path | None:
    """``path/<stem>.parquet``, else ``path/<stem>.csv``, else ``None``."""
    for ext in (".parquet", ".csv"):
        if (path / f"{stem}{ext}").exists():
            return path / f"{stem}{ext}"
    return None


def read_table(f: Path) -> pl.DataFrame:
    """The non-empty table in ``f`` (CSV columns are all read as strings)."""
    try:
        df = read_csv(f.read_bytes(), f.name) if f.suffix == ".csv" else pl.read_parquet(f)
    except ContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user error here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError(f"{f.name}: cannot be read ({first})") from exc
    if df.height == 0:
        raise ContractError(f"{f.name}: table is empty")
    return df


def read_csv(raw: bytes, file: str) -> pl.DataFrame:
    """The CSV file ``file`` (contents ``raw``), every column as a string. Blank lines at
    the end are ignored; whitespace around the header's names too (``a, b, c``: in such a
    file, whitespace around the values as well); a column named twice is an error."""
    text = _decode(raw, file)
    end = len(text)
    while end and text[end - 1].isspace():
        end -= 1
    end = text.find("\n", end)  # the last line break before the blank tail
    if 0 <= end < len(text) - 1:
        text = text[: end + 1]
        raw = text.encode()
    header = next(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")), [])
    names = header_names(header, file)
    try:
        df = pl.read_csv(raw, infer_schema=False)
    except Exception:
        if (bad := _bad_csv_line(text)) is None:
            raise
        line, why = bad
        shown = _clip(text.split("\n")[line - 1].rstrip("\r"))
        raise ContractError(f"{file}, line {line}: cannot parse CSV ({why}): {shown!r}") from None
    if names != header and len(names) == df.width:  # padded names: values padded alike
        df = df.rename(dict(zip(df.columns, names, strict=True)))
        df = df.with_columns(pl.all().str.strip_chars())
    return df


def header_names(header: list[str], file: str) -> list[str]:
    """A CSV header's names without surrounding whitespace; a name given twice is an error
    (it would otherwise come back as a renamed extra column)."""
    names = [name.strip() for name in header]
    if twice := next((n for i, n in enumerate(names) if n in names[:i]), None):
        raise ContractError(f"{file}, column '{twice}': the header names this column twice")
    return names


def _bad_csv_line(text: str) -> tuple[int, str] | None:
    """(1-based first line, reason) of the first malformed CSV record, if Python's csv
    module finds one: a quoting error or more fields than the header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start, width = 1, None
    try:
        for record in reader:
            if record and width is None:
                width = len(record)
            elif width is not None and len(record) > width:
                return start, f"{len(record)} fields, the header has {width}"
            start = reader.line_num + 1
    except csv.Error as exc:
        return start, str(exc)
    return None


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line_end = raw.find(b"\n", exc.start)
        line = raw[line_start : line_end if line_end >= 0 else len(raw)]
        shown = {"line": line.decode("utf-8", "replace")}
        if line_start == 0:
            raise ContractError(
                f"{file}, line 1: undecodable header (not UTF-8): {_clip(shown['line'])!r}"
            ) from None
        header = raw[: raw.find(b"\n")].decode("utf-8", "replace").strip().split(",")
        col_pos = raw[line_start : exc.start].count(b",")
        column = header[col_pos] if col_pos < len(header) else None
        row = raw[:line_start].count(b"\n") - 1
        raise contract_error(file, column, "undecodable text (not UTF-8)", shown, row) from None


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
