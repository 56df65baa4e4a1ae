"""What the seeded real-data benchmark scripts share (``generative.py``, ``prefix.py``,
``quality.py``): their common options and how they print a result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audiograph.core.atomic import write_json


def add_common_args(
    ap: argparse.ArgumentParser, rows: str, choices: tuple[str, ...], saved: str
) -> None:
    """``--data-root --workdir --seeds --ROWS --max-inputs --json --save`` (``--ROWS``: a
    comma-separated subset of ``choices``, checked by :func:`chosen`)."""
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--workdir", default=None, help="work folder (reused: resume)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(f"--{rows}", default=",".join(choices))
    ap.add_argument("--max-inputs", type=int, default=500, help="test inputs per task")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--save", action="store_true", help=f"write results/{saved}")


def chosen(text: str, choices: tuple[str, ...], what: str) -> list[str]:
    """The comma-separated names of ``text``; an unknown one exits with a one-line error."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if bad := set(names) - set(choices):
        sys.exit(f"error: unknown {what}(s) {sorted(bad)}; choose from {', '.join(choices)}")
    return names


def emit(out: dict[str, Any], as_json: bool, table: str) -> dict[str, Any]:
    """Print ``out`` as JSON, or as the Markdown of ``tables.TABLE(out)`` (the sibling
    script, imported only then); returns ``out``."""
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        import tables

        print(getattr(tables, table)(out))
    return out


def print_and_save(doc: dict[str, Any], table: str, saved: Path | None) -> dict[str, Any]:
    """Print ``doc`` as the Markdown of ``tables.TABLE(doc)`` and write it to ``saved``
    (a ``results/KIND-NAME.json``) when given; returns ``doc``."""
    import tables

    print(getattr(tables, table)(doc))
    if saved is not None:
        write_json(saved, doc)
    return doc
