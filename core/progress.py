"""Step timing printed to stderr: ``[build-graph] pairs ........ 12,345,678 rows  4.1s``."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


@contextlib.contextmanager
def step(stage: str, name: str, quiet: bool = False) -> Iterator[dict]:
    """Time a step; the block may set ``info["rows"]`` or ``info["note"]`` to print."""
    info: dict = {}
    t0 = time.perf_counter()
    yield info
    info["seconds"] = time.perf_counter() - t0
    if not quiet:
        extra = f" {info['rows']:>12,} rows" if "rows" in info else ""
        extra += f"  {info['note']}" if "note" in info else ""
        print(f"[{stage}] {name:<22}{extra}  {info['seconds']:.1f}s", file=sys.stderr, flush=True)
