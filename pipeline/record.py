"""``OUT/pipeline.json``, the runner's record of an experiment folder: its one owner.

The record is ``{"writer": "audiograph", "kind": "pipeline", "format_version": 1,
"stages": {name: {"key", "kind", "path", "settings", "seconds", "output"}}, "hashes": {...},
"running": name}`` (``output``: the content fingerprint of the finished output; ``hashes``:
the :class:`~audiograph.core.fingerprint.HashCache` of the files fingerprinted). A stage's
entry is written only after its output is complete, so an entry always describes a
finished output. ``running`` names the stage being rebuilt:

1. ``running`` is recorded, then a previous output is moved aside to ``.NAME.stale-PID``;
2. the stage writes ``OUT/NAME``;
3. the previous output is renamed ``.NAME.trash-PID``, the entry written and ``running``
   cleared in one write of the record, then the trash deleted.

A run killed anywhere leaves a record that :func:`recover` repairs before the next run:
a stage still ``running`` had its half-written output removed and the previous one (the
stale folder, which its entry still describes) put back, or, without one, its entry
dropped so that it is redone. Trash is deleted. One runner at a time holds
``OUT/.pipeline.lock``; a second one on the same folder is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from audiograph.core.atomic import aside_of, crash_point, read_json, remove_path, write_json
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION, WRITER, peek_kind

RECORD, LOCK, KIND = "pipeline.json", ".pipeline.lock", "pipeline"


def new_record() -> dict[str, Any]:
    return {"writer": WRITER, "kind": KIND, "format_version": FORMAT_VERSION, "stages": {}}


def read_record(out: Path) -> dict[str, Any]:
    """The record of the experiment folder ``out`` (a new one when there is none); a
    ``pipeline.json`` the runner did not write is refused, never rewritten."""
    path = out / RECORD
    if not path.exists():
        return new_record()
    foreign = ContractError(
        f"{path}: exists and is not the record of an audiograph experiment; choose another "
        "[experiment] out or move the file away"
    )
    try:
        record = read_json(path)
    except ContractError:
        raise foreign from None
    if not isinstance(record, dict) or not isinstance(record.get("stages"), dict):
        raise foreign
    entries = record["stages"].values()
    if record.get("writer") != WRITER and not all(  # records before the writer field
        isinstance(e, dict) and {"key", "kind", "path"} <= set(e) for e in entries
    ):
        raise foreign
    if record.get("kind", KIND) != KIND:
        raise foreign
    return {**new_record(), **record}


def write_record(out: Path, record: dict[str, Any]) -> None:
    write_json(out / RECORD, record)


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``OUT/.pipeline.lock`` for the block (one runner per experiment folder)."""
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ContractError(
                f"{out}: another 'audiograph run' is writing this experiment folder; wait for "
                "it to finish or choose another [experiment] out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _leftovers(out: Path, tag: str) -> dict[str, Path]:
    """``{stage name: path}`` of the ``.NAME.<tag>-PID`` folders in ``out``."""
    found = {}
    for entry in out.iterdir():
        if (name := aside_of(entry.name, (tag,))) is not None:
            found[name] = entry
    return found


def recover(out: Path, record: dict[str, Any], log: Callable[[str], None]) -> None:
    """Repair what a killed run left in ``out`` (call with the lock held): see the module
    docstring. Writes the repaired record."""
    for path in _leftovers(out, "trash").values():
        remove_path(path)
    stale = _leftovers(out, "stale")
    running = record.pop("running", None)
    for name in sorted({*stale, *([running] if running else [])}):
        target = out / name
        if target.exists() or target.is_symlink():
            remove_path(target)  # half-written by the interrupted stage (the runner's own)
        if name == running and name in stale:
            os.replace(stale[name], target)
            log(f"{name}: an interrupted rebuild was undone; the previous output is back")
        else:  # no previous output, or left by a runner that did not record `running`
            if name in stale:
                remove_path(stale[name])
            record["stages"].pop(name, None)
            log(f"{name}: the output of an interrupted run was removed; it will be redone")
    write_record(out, record)


def rebuild(
    out: Path, name: str, kind: str, record: dict[str, Any], run: Callable[[], None]
) -> Path | None:
    """Run stage ``name`` into ``OUT/NAME`` (steps 1-2 of the module docstring); returns
    the trash folder holding the replaced output (the caller deletes it once the record
    says the stage is done), or None. On failure the half-written output is removed and
    the previous one restored."""
    target = out / name
    aside = None
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        found = peek_kind(target) if target.is_dir() else None
        if name not in record["stages"] or not found or found.get("kind") != kind:
            raise ContractError(
                f"{target}: exists and is not this experiment's {kind} output; move it away "
                "or choose another [experiment] out"
            )
        aside = out / f".{name}.stale-{os.getpid()}"
    record["running"] = name
    write_record(out, record)
    if aside is not None:
        os.replace(target, aside)
    elif target.exists():
        target.rmdir()
    crash_point("runner.started")
    try:
        run()
    except BaseException:
        if target.exists() or target.is_symlink():
            remove_path(target)
        if aside is not None:
            os.replace(aside, target)
        record.pop("running", None)
        write_record(out, record)
        raise
    crash_point("runner.finished")
    if aside is None:
        return None
    trash = out / f".{name}.trash-{os.getpid()}"
    os.replace(aside, trash)
    return trash


def discard(trash: Path | None) -> None:
    """Delete what :func:`rebuild` replaced (after the record was written)."""
    if trash is not None:
        crash_point("runner.recorded")
        remove_path(trash)
