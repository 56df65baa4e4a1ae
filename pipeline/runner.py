"""``audiograph run EXPERIMENT.toml``: the stages of :mod:`.stages`, cached.

An experiment file has an ``[experiment]`` table and one table per stage it runs::

    [experiment]
    out = "runs/demo"     # every stage writes OUT/<stage>
    seed = 0              # given to every stage that takes a seed and sets none
    # data = "data/mine"  # an existing dataset instead of a [prepare] stage
    # [experiment.given]    # existing outputs instead of stages, checked by kind
    # export = "emb/mine"   # e.g. embeddings built by `embed-space`

    [prepare]
    adapter = "synthetic"
    users = 3000

    [split]
    [graph]
    [hgnn]
    epochs = 3

A stage runs when its table is present (an empty table takes the defaults); the stages it
needs must be present too. Each output is cached under the key ``sha256(stage, settings,
the keys and fingerprints of its inputs)``, recorded in ``OUT/pipeline.json``: a rerun
skips a stage whose key is unchanged and whose output is still there, and reruns what
depends on a changed one. A stale output is moved aside while its stage reruns and
deleted only once the new one is written (restored if the stage fails). ``--until STAGE``
stops after a stage; ``--force STAGE`` reruns one even when cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from audiograph.core.atomic import read_json, resolved, write_json
from audiograph.core.errors import ContractError
from audiograph.core.formats import check_kind, peek_kind
from audiograph.core.runs import fingerprint
from audiograph.pipeline.config import read_toml
from audiograph.pipeline.stages import BY_NAME, NAMES, build_settings

RECORD = "pipeline.json"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A parsed experiment: output folder, seed, the existing outputs it uses in place of
    stages (``given``: ``{stage: path}``; ``[experiment] data`` is ``given["prepare"]``) and
    the validated settings of each stage it runs, in stage order."""

    out: Path
    seed: int | None
    given: dict[str, Path]
    settings: dict[str, Any]
    source: str

    @property
    def data(self) -> Path | None:
        """The external dataset (``[experiment] data``), or None."""
        return self.given.get("prepare")


def read_experiment(path: str | Path | dict[str, Any]) -> Experiment:
    """Parse and validate an experiment TOML file (or its already-parsed dict)."""
    source = "experiment" if isinstance(path, dict) else str(path)
    doc = path if isinstance(path, dict) else read_toml(path)
    head = dict(doc.get("experiment", {}))
    unknown = sorted(set(doc) - set(NAMES) - {"experiment"})
    if unknown:
        raise ContractError(f"{source}: unknown stage [{unknown[0]}] (stages: {', '.join(NAMES)})")
    bad = sorted(set(head) - {"out", "seed", "data", "given"})
    if bad:
        raise ContractError(
            f"{source} [experiment]: unknown setting '{bad[0]}' (out, seed, data, given)"
        )
    if "out" not in head:
        raise ContractError(f"{source} [experiment]: 'out' (the output folder) is required")
    seed = head.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ContractError(f"{source} [experiment]: seed must be an int, got {seed!r}")
    given = _given(head, source)
    for name in sorted(set(given) & set(doc)):
        raise ContractError(f"{source}: [{name}] is both a stage and a given output; "
                            "keep one")  # fmt: skip
    settings = {}
    for name in NAMES:
        if name in doc:
            if not isinstance(doc[name], dict):
                raise ContractError(f"{source}: [{name}] must be a table")
            settings[name] = build_settings(name, doc[name], seed, source, doc.get("twotower"))
    present = set(settings) | set(given)
    for name in settings:
        stage = BY_NAME[name]
        for arg in stage.inputs:
            need = stage.source(arg, present)[0]
            if arg not in stage.optional and need not in present:
                raise ContractError(f"{source}: stage [{name}] needs [{need}]")
    return Experiment(Path(head["out"]), seed, given, settings, source)


def _given(head: dict[str, Any], source: str) -> dict[str, Path]:
    """``{stage: path}`` of the outputs an experiment takes as given (each of its stage's
    kind, checked now)."""
    table = head.get("given", {})
    if not isinstance(table, dict):
        raise ContractError(f'{source} [experiment]: given must be a table stage = "path"')
    if head.get("data"):
        if "prepare" in table:
            raise ContractError(f"{source} [experiment]: give the dataset once (data or given)")
        table = {**table, "prepare": head["data"]}
    given = {}
    for name, path in table.items():
        if name not in BY_NAME:
            raise ContractError(f"{source} [experiment.given]: unknown stage '{name}' "
                                f"(stages: {', '.join(NAMES)})")  # fmt: skip
        if not isinstance(path, str | Path):
            raise ContractError(f"{source} [experiment.given]: {name} must be a path")
        check_kind(Path(path), BY_NAME[name].kind)
        given[name] = Path(path)
    return given


def _plain(value: Any) -> Any:
    """JSON-able form of a stage's settings (dataclass or dict)."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def run_experiment(
    exp: Experiment,
    until: str | None = None,
    force: tuple[str, ...] = (),
    quiet: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run (or reuse) every stage of ``exp`` in order; returns ``{stage: {"key", "path",
    "cached", "seconds"}}`` and keeps ``OUT/pipeline.json`` up to date after each stage."""
    for name in (until, *force):
        if name is not None and name not in exp.settings:
            raise ContractError(f"{name!r} is not a stage of {exp.source} "
                                f"({', '.join(exp.settings)})")  # fmt: skip
    out = resolved(exp.out)
    out.mkdir(parents=True, exist_ok=True)
    record_file = out / RECORD
    record = read_json(record_file) if record_file.exists() else {"stages": {}}
    done: dict[str, dict[str, Any]] = {}
    keys = {name: fingerprint(path) for name, path in exp.given.items()}
    paths = {name: resolved(path) for name, path in exp.given.items()}
    t_all = time.perf_counter()
    for name, settings in exp.settings.items():
        stage = BY_NAME[name]
        where = {arg: stage.source(arg, paths) for arg in stage.inputs}
        inputs = {arg: paths[src] / sub if sub else paths[src]
                  for arg, (src, sub) in where.items() if src in paths}  # fmt: skip
        key = _key(name, _plain(settings), {a: (keys[where[a][0]], fingerprint(inputs[a]))
                                            for a in inputs})  # fmt: skip
        target = out / name
        prev = record["stages"].get(name, {})
        cached = prev.get("key") == key and name not in force and _intact(target, stage.kind)
        t0 = time.perf_counter()
        if not cached:
            _log(quiet, f"{name}: running -> {target}")
            _rebuild(target, stage.kind, prev, lambda s=stage, v=settings, i=inputs, t=target:
                     s.run(v, i, t))  # fmt: skip
        seconds = time.perf_counter() - t0
        keys[name], paths[name] = key, target
        record["stages"][name] = {"key": key, "kind": stage.kind, "path": str(target),
                                  "settings": _plain(settings)}  # fmt: skip
        write_json(record_file, record)
        done[name] = {"key": key, "path": str(target), "cached": cached, "seconds": seconds}
        _log(quiet, f"{name}: {'cached' if cached else f'done in {seconds:.1f}s'} "
                    f"(key {key[:12]})")  # fmt: skip
        if name == until:
            break
    ran = sum(not d["cached"] for d in done.values())
    _log(quiet, f"{len(done)} stages ({ran} run, {len(done) - ran} cached) in "
                f"{time.perf_counter() - t_all:.1f}s -> {out}")  # fmt: skip
    return done


def _key(name: str, settings: Any, inputs: dict[str, Any]) -> str:
    blob = json.dumps({"stage": name, "settings": settings, "inputs": inputs},
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()


def _intact(target: Path, kind: str) -> bool:
    try:
        check_kind(target, kind)
    except ContractError:
        return False
    return True


def _rebuild(target: Path, kind: str, prev: dict[str, Any], run: Any) -> None:
    """Run the stage into ``target``. A previous output there is moved aside first —
    only one this runner recorded, of the same kind — and deleted after success,
    restored after a failure; anything else at ``target`` is refused."""
    aside = None
    if target.exists() and any(target.iterdir()):
        found = peek_kind(target)
        if not prev or not found or found.get("kind") != kind:
            raise ContractError(
                f"{target}: exists and is not this experiment's {kind} output; move it away "
                "or choose another [experiment] out"
            )
        aside = target.with_name(f".{target.name}.stale-{os.getpid()}")
        os.replace(target, aside)
    elif target.exists():
        target.rmdir()
    try:
        run()
    except BaseException:
        if aside is not None:
            shutil.rmtree(target, ignore_errors=True)
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"[run] {msg}", file=sys.stderr, flush=True)
