"""Content fingerprints of input files and directories (the runner's cache key, resume checks).

A fingerprint is a sha256 over the relative path and the content hash of every file under
a path (symlinks followed, hidden temporary siblings skipped), so any edit shows, also one
that keeps a file's size. Hashing every byte on every run would be slow for large inputs:
a :class:`HashCache` remembers each file's digest under its ``(size, mtime_ns, ctime_ns,
inode)``; a file whose stat is unchanged is not read again. ``ctime`` cannot be set by a
user, so an in-place edit that restores the old ``mtime`` is still seen.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from audiograph.core.atomic import aside_of

CHUNK = 1 << 20


class HashCache:
    """``{absolute path: [size, mtime_ns, ctime_ns, inode, sha256 hex]}`` of files already
    hashed; JSON-able through :attr:`table` (the runner keeps it in its record)."""

    def __init__(self, table: dict[str, Any] | None = None) -> None:
        self.table: dict[str, Any] = dict(table or {})
        self.read_bytes = 0  # bytes hashed by this cache (tests, progress)

    def digest(self, path: Path) -> str:
        """The sha256 of ``path``'s content, read only when its stat changed."""
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        hit = self.table.get(str(path))
        if isinstance(hit, list) and len(hit) == 5 and hit[:4] == stamp:
            return str(hit[4])
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
        self.read_bytes += st.st_size
        self.table[str(path)] = [*stamp, h.hexdigest()]
        return h.hexdigest()

    def keep_only(self, paths: set[str]) -> None:
        """Forget files not in ``paths`` (keeps the table from growing without bound)."""
        self.table = {k: v for k, v in self.table.items() if k in paths}


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found = []
    for base, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _temporary(d))
        found += [Path(base) / n for n in sorted(names) if not _temporary(n)]
    return found


def _temporary(name: str) -> bool:
    """Hidden siblings of an atomic write in progress (``.NAME.tmp-…``, ``.NAME.old-…``)."""
    return aside_of(name, ("tmp", "old", "stale")) is not None


def content_fingerprint(path: str | os.PathLike, cache: HashCache | None = None) -> str:
    """16 hex digits over the relative paths and content hashes of the files under
    ``path`` (a file or a directory); equal exactly when the content is."""
    root = Path(path).expanduser().resolve()
    cache = cache if cache is not None else HashCache()
    h = hashlib.sha256()
    for f in _files(root):
        rel = f.relative_to(root.parent) if f != root else Path(root.name)
        h.update(f"{rel}\0{cache.digest(f.resolve())}\n".encode())
    return h.hexdigest()[:16]


__all__ = ["HashCache", "content_fingerprint"]
