"""Safe outputs: atomic directories and files that never destroy what audiograph did not write.

Every output directory is written into a temporary sibling ``.NAME.tmp-PID-RAND`` and
renamed into place at the end; a replaced output is first moved to ``.NAME.old-PID-RAND``
and deleted after the swap. Its ``manifest.json`` is sealed with ``writer="audiograph"``,
the ``kind`` of output and the list of ``files`` it holds. An existing ``--out`` is
replaced only when it is an empty directory, or its manifest says audiograph wrote it,
its kind is the kind being written and it holds no file the manifest does not list.
``--out`` equal to, inside or containing an input is refused before any work starts.

A run killed at any instant leaves either the previous output or the new one; the next
run on the same ``--out`` removes the dead run's temporary siblings and, if ``NAME``
itself is missing after a kill between the two renames, restores ``.NAME.old-*``.
Directories and files get the user's umask.

``AUDIOGRAPH_CRASH_AT=NAME[@N]`` kills the process (SIGKILL) the N-th time the named
:func:`crash_point` is reached: the deterministic hook of the kill tests.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION, MANIFEST, WRITER

CRASH_ENV = "AUDIOGRAPH_CRASH_AT"
_crash_counts: collections.Counter[str] = collections.Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process when ``$AUDIOGRAPH_CRASH_AT`` names this point (kill tests)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target == name:
        _crash_counts[name] += 1
        if _crash_counts[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def resolved(path: str | os.PathLike) -> Path:
    """``path`` made absolute with symlinks resolved (the identity used by every check)."""
    return Path(path).expanduser().resolve()


def check_overlap(out: Path, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an ``out`` that is, lies inside or contains one of ``inputs``."""
    for given in inputs:
        if given is None:
            continue
        inp = resolved(given)
        if out == inp:
            how = "is the input"
        elif inp in out.parents:
            how = "lies inside the input"
        elif out in inp.parents:
            how = "contains the input"
        else:
            continue
        raise ContractError(f"--out {out} {how} {inp}; choose an output outside the inputs")


def aside_of(entry: str, tags: Iterable[str]) -> str | None:
    """``NAME`` when ``entry`` is a hidden ``.NAME.<tag>-PID…`` sibling for one of
    ``tags`` (``tmp`` / ``old``: an atomic write; ``stale`` / ``trash``: the runner's
    replaced outputs), else None. The one place that parses these names."""
    if not entry.startswith("."):
        return None
    for tag in tags:
        if f".{tag}-" in entry:
            return entry[1:].rsplit(f".{tag}-", 1)[0]
    return None


def remove_path(path: Path, ignore_errors: bool = False) -> None:
    """Delete ``path``: a directory tree (never followed through a symlink) or a file."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=ignore_errors)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=ignore_errors)


def _sibling(out: Path, tag: str) -> Path:
    return out.with_name(f".{out.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: Path) -> None:
    """Clean up after a killed run on ``out``: remove its temporary siblings, restore a
    moved-away previous output when ``out`` itself is missing."""
    if not out.parent.is_dir():
        return
    for entry in sorted(out.parent.iterdir()):
        for tag in ("tmp", "old"):
            prefix = f".{out.name}.{tag}-"
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name[len(prefix) :].split("-", 1)[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if tag == "old" and not out.exists() and entry.is_dir():
                os.replace(entry, out)
            else:
                remove_path(entry, ignore_errors=True)


def recover_inside(folder: Path) -> None:
    """:func:`recover` every target inside ``folder`` that has temporary siblings."""
    names = {aside_of(entry.name, ("tmp", "old")) for entry in folder.iterdir()}
    for name in sorted(n for n in names if n is not None):
        recover(folder / name)


def _files(root: Path) -> list[str]:
    """Relative paths of every file under ``root`` (symlinks not followed), sorted."""
    out = []
    for base, dirs, names in os.walk(root):
        dirs.sort()
        out += [os.path.relpath(os.path.join(base, n), root) for n in names]
    return sorted(out)


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; a missing or malformed file is a one-line error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: not valid JSON ({exc})") from None


def _foreign(out: Path, kind: str) -> str | None:
    """Why the existing directory ``out`` may not be replaced by a ``kind`` (None: it may)."""
    if not any(out.iterdir()):
        return None
    if not (out / MANIFEST).is_file():
        return f"exists and was not written by audiograph (no {MANIFEST})"
    try:
        man = read_json(out / MANIFEST)
    except ContractError:
        return f"exists and its {MANIFEST} is unreadable"
    if not isinstance(man, dict) or man.get("writer") != WRITER:
        return f"exists and was not written by audiograph ({MANIFEST} names no writer)"
    if man.get("kind") != kind:
        return f"holds a {man.get('kind')!r} output, and this command writes a {kind!r}"
    extra = sorted(set(_files(out)) - set(man.get("files", [])) - {MANIFEST})
    if extra:
        return f"holds {len(extra)} file(s) audiograph did not write (e.g. {extra[0]})"
    return None


def claim_output(out: str | os.PathLike, kind: str, inputs: Iterable[Any] = ()) -> Path:
    """Check (before any work) that a ``kind`` output may be written at ``out``; returns
    the resolved path. Raises a one-line :class:`ContractError` otherwise."""
    path = resolved(out)
    check_overlap(path, inputs)
    recover(path)
    if path.exists() and not path.is_dir():
        raise ContractError(f"--out {path}: exists and is not a directory")
    if path.exists() and (why := _foreign(path, kind)):
        raise ContractError(f"--out {path}: {why}; choose another --out or move it away")
    return path


def swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished directory ``tmp`` to ``out``, replacing what is there."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = _sibling(out, "old")
    os.replace(out, old)
    crash_point("swap")
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def make_temp_dir(out: Path) -> Path:
    """A new empty temporary sibling of ``out`` (the user's umask applies)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    tmp.mkdir()
    return tmp


def seal_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """Stamp ``folder/manifest.json`` (written by the caller) with writer, kind,
    format_version and files."""
    man = read_json(folder / MANIFEST) if (folder / MANIFEST).exists() else {}
    if man.get("kind", kind) != kind:
        raise AssertionError(f"manifest kind {man['kind']!r} != {kind!r}")
    man.setdefault("format_version", FORMAT_VERSION)
    man.update(writer=WRITER, kind=kind, files=[f for f in _files(folder) if f != MANIFEST])
    write_json(folder / MANIFEST, man)
    apply_umask(folder)
    return man


def apply_umask(folder: Path) -> None:
    """Give ``folder`` and everything in it the user's umask (some writers, e.g.
    safetensors, create their files 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for base, dirs, names in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(base, d), 0o777 & ~mask)
        for n in names:
            if not os.path.islink(p := os.path.join(base, n)):
                os.chmod(p, 0o666 & ~mask)


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, kind: str, inputs: Iterable[Any] = ()) -> Iterator[Path]:
    """Yield a temporary directory that becomes the ``kind`` output ``out`` when the block
    succeeds (see the module docstring for what may be replaced)."""
    inputs = list(inputs)
    path = claim_output(out, kind, inputs)
    tmp = make_temp_dir(path)
    try:
        yield tmp
        seal_manifest(tmp, kind)
        claim_output(path, kind, inputs)
        swap_in(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes, point: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically: temporary sibling, fsync, rename. A kill at
    any instant leaves the previous file or the new one. ``point`` names the crash points
    ``<point>.partial`` (half written) and ``<point>.written`` (before the rename)."""
    path = Path(path)
    tmp = _sibling(path, "tmp")
    try:
        with open(tmp, "xb") as f:
            half = len(data) // 2
            f.write(data[:half])
            if point:
                f.flush()
                crash_point(f"{point}.partial")
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
        if point:
            crash_point(f"{point}.written")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON (atomically)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    write_bytes(path, text.encode("utf-8"))


def write_manifest(folder: Path, manifest: dict[str, Any], started: float) -> None:
    """Stamp ``manifest["seconds"]`` (since ``started``, a ``time.perf_counter()``) and
    write it as ``folder/manifest.json``."""
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    write_json(Path(folder) / MANIFEST, manifest)


# ----------------------------------------------------------------------------- single files

FILE_KIND = b"audiograph.kind"


def parquet_marker(kind: str) -> dict[bytes, bytes]:
    """Schema metadata that marks a parquet file as a ``kind`` output of audiograph."""
    return {FILE_KIND: kind.encode()}


def _file_kind(path: Path) -> str | None:
    if path.suffix != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # not a parquet file: certainly not ours
        return None
    return meta.get(FILE_KIND, b"").decode() or None


def claim_file(path: str | os.PathLike, kind: str, inputs: Iterable[Any] = ()) -> Path:
    """Check that the single-file ``kind`` output ``path`` may be written (it does not
    exist, or audiograph wrote it as a ``kind``); returns the resolved path."""
    out = resolved(path)
    check_overlap(out, inputs)
    recover(out)
    if out.is_dir():
        raise ContractError(f"--out {out}: is a directory; give a file path")
    if out.exists() and _file_kind(out) != kind:
        raise ContractError(
            f"--out {out}: exists and was not written by audiograph as a {kind!r} file; "
            "choose another --out or move it away"
        )
    return out


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, kind: str, inputs: Iterable[Any] = ()) -> Iterator[Path]:
    """Yield a temporary sibling path that becomes ``path`` (fsynced, renamed) when the
    block succeeds; the writer marks the file (e.g. :func:`parquet_marker`)."""
    inputs = list(inputs)
    out = claim_file(path, kind, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        claim_file(out, kind, inputs)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
