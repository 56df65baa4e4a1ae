"""Atomic output directories: write into a temporary sibling, then rename.

A failed step leaves nothing at the destination. An existing destination is
replaced only if it is empty or was written by audiograph (it has a
``manifest.json``), so a typo in ``--out`` never wipes unrelated data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphs.errors import ContractError

MANIFEST = "manifest.json"


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` when the block succeeds."""
    out = Path(out).absolute()
    if out.exists() and not _replaceable(out):
        raise ContractError(
            f"{out}: output directory exists and was not written by audiograph "
            f"(no {MANIFEST}); choose another --out or remove it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replaceable(path: Path) -> bool:
    if path.is_file():
        return False
    return not any(path.iterdir()) or (path / MANIFEST).exists()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON."""
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
