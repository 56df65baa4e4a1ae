"""The header of a CSV table that may be a folder of part files (as Spark writes them).

Spark's CSV reader takes the column names from one file and maps every other part's
columns onto them by position: a part written with other columns, or in another order,
would be read silently wrong. :func:`same_header` checks the first line of every part,
read by :func:`first_lines` (a local path) or :func:`url_first_lines` (a URL, through
Spark's Hadoop file system).
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
from pathlib import Path
from typing import Any

from audiograph.core.errors import contract_error
from audiograph.graphs.tables import header_names

#: compressed parts Python does not read here (not checked; Spark reads them)
_OTHER_CODECS = (".zst", ".lz4", ".snappy", ".deflate")


def first_lines(path: Path) -> list[tuple[str, str | None]]:
    """``(name, first line)`` of the CSV file ``path`` or of each file Spark reads in the
    folder ``path`` (sorted; names starting ``_`` or ``.`` are skipped, as Spark skips them;
    ``.gz`` and ``.bz2`` parts are decompressed); the line is None for an empty file, one
    compressed otherwise or one that cannot be read (not checked here: Spark reports it)."""
    parts = [(path.name, path)]
    if path.is_dir():
        found = ((f, f.relative_to(path)) for f in sorted(path.rglob("*")) if f.is_file())
        parts = [
            (f"{path.name}/{rel.as_posix()}", f)
            for f, rel in found
            if not any(p.startswith(("_", ".")) for p in rel.parts)
        ]
    out: list[tuple[str, str | None]] = []
    for name, f in parts:
        line = None
        with contextlib.suppress(OSError, EOFError):
            if f.suffix not in _OTHER_CODECS:
                opener = {".gz": gzip.open, ".bz2": bz2.open}.get(f.suffix, open)
                with opener(f, "rt", encoding="utf-8", errors="replace", newline="") as fh:
                    line = fh.readline().rstrip("\r\n") or None
        out.append((name, line))
    return out


def same_header(lines: list[tuple[str, str | None]], table: str) -> str | None:
    """The header line (without a byte-order mark) of the first non-empty ``(part name,
    first line)``; a part whose header names other columns, or the same in another order,
    is a one-line error naming the part and the first column that differs."""
    parsed = [
        (name, line, header_names(next(csv.reader([line]), []), name))
        for name, line in ((n, x.removeprefix("\ufeff")) for n, x in lines if x)
    ]
    if not parsed:
        return None
    first, line, header = parsed[0]
    for name, _, names in parsed[1:]:
        if names == header:
            continue
        pairs = enumerate(zip(names, header, strict=False))
        i = next((i for i, (a, b) in pairs if a != b), min(len(names), len(header)))
        if i < len(names):
            column, theirs = names[i], f"'{header[i]}'" if i < len(header) else "no column"
            problem = f"column {i + 1} of this part's header, where {first} has {theirs}"
        else:
            column = header[i]
            problem = f"missing from this part's header ({first} has it as column {i + 1})"
        raise contract_error(
            name, column, f"{problem}; every part of {table} needs the same header"
        )
    return line


def url_first_lines(spark: Any, url: str) -> list[tuple[str, str | None]]:
    """:func:`first_lines` for a URL, through Spark's Hadoop file system (any codec it
    knows is decompressed)."""
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    base = jvm.org.apache.hadoop.fs.Path(url)
    fs = base.getFileSystem(conf)
    table = url.rstrip("/").rsplit("/", 1)[-1]
    if not fs.getFileStatus(base).isDirectory():
        paths = [(table, base)]
    else:
        root = fs.makeQualified(base).toUri().getPath().rstrip("/")
        paths, listing = [], fs.listFiles(base, True)
        while listing.hasNext():
            found = listing.next().getPath()
            rel = found.toUri().getPath()[len(root) + 1 :]
            if not any(p.startswith(("_", ".")) for p in rel.split("/")):
                paths.append((f"{table}/{rel}", found))
        paths.sort(key=lambda p: p[0])
    codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
    out: list[tuple[str, str | None]] = []
    for name, found in paths:
        stream = fs.open(found)
        if (codec := codecs.getCodec(found)) is not None:
            stream = codec.createInputStream(stream)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            out.append((name, reader.readLine() or None))
        finally:
            reader.close()
    return out
