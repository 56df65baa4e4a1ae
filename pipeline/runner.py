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
needs with its settings (``[users] source = "hgnn"`` needs ``[export]``) must be present
too, all checked before any stage runs. ``data`` may be any folder with an items table
(the user's own parquet or CSV files need no manifest). Each output is cached under the key
``sha256(stage, settings, the keys and content fingerprints of its inputs)`` (every byte
counts: :mod:`audiograph.core.fingerprint`), recorded in ``OUT/pipeline.json`` with the
content fingerprint of the output it produced: a rerun skips a stage whose key is
unchanged, whose output is intact and still has that fingerprint (an output edited or
corrupted since is rebuilt) and none of whose inputs was rebuilt in this run.
``--until STAGE`` stops after a stage; ``--force STAGE`` reruns one even when cached, and
everything that reads it. A stage counts as done only once its output is complete; a
rerun after a kill restores the previous output or redoes the stage, never reuses half of
one (:mod:`.record`). Progress goes to stderr every 30 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audiograph.core.atomic import resolved
from audiograph.core.errors import ContractError
from audiograph.core.fingerprint import HashCache, content_fingerprint
from audiograph.core.formats import check_kind
from audiograph.pipeline.config import read_toml
from audiograph.pipeline.record import discard, locked, read_record, rebuild, recover, write_record
from audiograph.pipeline.stages import BY_NAME, NAMES, build_settings


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
    if not isinstance(doc.get("experiment", {}), dict):
        raise ContractError(
            f"{source}: [experiment] must be a table, got experiment = {doc['experiment']!r}"
        )
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
    if not isinstance(head["out"], str) or not head["out"].strip():
        raise ContractError(
            f"{source} [experiment]: out must be a folder path (a string), got {head['out']!r}"
        )
    seed = head.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ContractError(f"{source} [experiment]: seed must be an int, got {seed!r}")
    given = _given(head, source)
    for name in sorted(set(given) & set(doc)):
        raise ContractError(f"{source}: [{name}] is both a stage and a given output; keep one")
    settings = {}
    for name in NAMES:
        if name in doc:
            if not isinstance(doc[name], dict):
                raise ContractError(f"{source}: [{name}] must be a table")
            settings[name] = build_settings(name, doc[name], seed, source, doc.get("twotower"))
    _check_needs(settings, set(settings) | set(given), source)
    return Experiment(Path(head["out"]), seed, given, settings, source)


def _check_needs(settings: dict[str, Any], present: set[str], source: str) -> None:
    """Refuse, before any stage runs, a stage whose settings need an input that no stage
    of the experiment (nor a given output) provides (:meth:`Stage.required`)."""
    for name, value in settings.items():
        stage = BY_NAME[name]
        for arg, why in stage.required(value).items():
            need = stage.source(arg, present)[0]
            if need not in present:
                needs = f"with {why} needs the [{need}] stage" if why else f"needs [{need}]"
                raise ContractError(
                    f"{source}: stage [{name}] {needs}; add the [{need}] table or give its "
                    "output in [experiment.given]"
                )


def _given(head: dict[str, Any], source: str) -> dict[str, Path]:
    """``{stage: path}`` of the outputs an experiment takes as given (each of its stage's
    kind, checked now)."""
    table = head.get("given", {})
    if not isinstance(table, dict):
        raise ContractError(f'{source} [experiment]: given must be a table stage = "path"')
    if "data" in head:
        if "prepare" in table:
            raise ContractError(f"{source} [experiment]: give the dataset once (data or given)")
        table = {**table, "prepare": head["data"]}
    given = {}
    for name, path in table.items():
        if name not in BY_NAME:
            raise ContractError(
                f"{source} [experiment.given]: unknown stage '{name}' (stages: {', '.join(NAMES)})"
            )
        if not isinstance(path, str | Path) or not str(path).strip():
            what = "data" if name == "prepare" and head.get("data") else f"given.{name}"
            raise ContractError(f"{source} [experiment]: {what} must be a path, got {path!r}")
        if name != "prepare" or not _contract_dataset(Path(path)):
            check_kind(Path(path), BY_NAME[name].kind)
        given[name] = Path(path)
    return given


def _contract_dataset(path: Path) -> bool:
    """Whether ``path`` is a dataset of the user's own (a folder with an items table; it
    needs no manifest: the split stage validates its tables)."""
    from audiograph.graphs.contract import has_items

    return has_items(path)


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
    "cached", "seconds"}}`` and keeps ``OUT/pipeline.json`` up to date after each stage.

    A stage is cached when its key (settings + content fingerprints of its inputs) is the
    recorded one, its output is intact and unchanged since it was recorded (its content
    fingerprint) and no stage it reads from ran in this call; a forced stage reruns, and
    so does everything downstream of it. Every stage's needs are checked first."""
    for name in (until, *force):
        if name is not None and name not in exp.settings:
            raise ContractError(
                f"{name!r} is not a stage of {exp.source} ({', '.join(exp.settings)})"
            )
    _check_needs(exp.settings, set(exp.settings) | set(exp.given), exp.source)
    out = resolved(exp.out)
    _check_out(out, exp)
    out.mkdir(parents=True, exist_ok=True)
    with locked(out):
        record = read_record(out)
        recover(out, record, lambda msg: _log(quiet, msg))
        return _run_stages(exp, out, record, until, force, quiet)


def _run_stages(
    exp: Experiment,
    out: Path,
    record: dict[str, Any],
    until: str | None,
    force: tuple[str, ...],
    quiet: bool,
) -> dict[str, dict[str, Any]]:
    cache = HashCache(record.get("hashes"))
    done: dict[str, dict[str, Any]] = {}
    keys = {name: content_fingerprint(path, cache) for name, path in exp.given.items()}
    paths = {name: resolved(path) for name, path in exp.given.items()}
    ran: set[str] = set()
    t_all, names = time.perf_counter(), list(exp.settings)
    for name, settings in exp.settings.items():
        stage = BY_NAME[name]
        where = {arg: stage.source(arg, paths) for arg in stage.inputs}
        inputs = {
            arg: paths[src] / sub if sub else paths[src]
            for arg, (src, sub) in where.items()
            if src in paths
        }
        key = _key(
            name,
            _plain(settings),
            {a: (keys[where[a][0]], content_fingerprint(inputs[a], cache)) for a in inputs},
        )
        target = out / name
        prev = record["stages"].get(name, {})
        cached = (
            prev.get("key") == key
            and name not in force
            and _intact(target, stage.kind)
            and not any(where[a][0] in ran for a in inputs)
            and prev.get("output", "") in ("", content_fingerprint(target, cache))
        )
        t0 = time.perf_counter()
        trash = None
        if not cached:
            step = f"{name} ({names.index(name) + 1}/{len(names)})"
            _log(quiet, f"{step}: running -> {target}")
            with _progress(quiet, step, prev.get("seconds")):
                run = functools.partial(stage.run, settings, inputs, target)
                trash = rebuild(out, name, stage.kind, record, run)
            ran.add(name)
        seconds = time.perf_counter() - t0
        keys[name], paths[name] = key, target
        record["stages"][name] = {
            "key": key,
            "kind": stage.kind,
            "path": str(target),
            "settings": _plain(settings),
            "seconds": prev.get("seconds", seconds) if cached else seconds,
            "output": content_fingerprint(target, cache),
        }
        record.pop("running", None)
        record["hashes"] = cache.table
        write_record(out, record)
        discard(trash)
        done[name] = {"key": key, "path": str(target), "cached": cached, "seconds": seconds}
        _log(quiet, f"{name}: {'cached' if cached else f'done in {seconds:.1f}s'} (key {key[:12]})")
        if name == until:
            break
    _log(
        quiet,
        f"{len(done)} stages ({len(ran)} run, {len(done) - len(ran)} cached) in "
        f"{time.perf_counter() - t_all:.1f}s -> {out}",
    )
    return done


def _check_out(out: Path, exp: Experiment) -> None:
    """Refuse, before anything is created, an ``out`` that is a file, or that is or lies
    inside an input the experiment reads."""
    if out.exists() and not out.is_dir():
        raise ContractError(f"{exp.source} [experiment]: out {out} exists and is not a folder")
    for name, given in exp.given.items():
        inp = resolved(given)
        if out == inp or inp in out.parents:
            raise ContractError(
                f"{exp.source} [experiment]: out {out} lies inside the input {inp} "
                f"({'data' if name == 'prepare' else 'given ' + name}); choose an out "
                "outside the inputs"
            )
        if inp in {out / stage for stage in exp.settings}:
            raise ContractError(
                f"{exp.source} [experiment]: the input {inp} is where stage "
                f"[{inp.name}] writes; choose another out"
            )
    if out.is_dir():
        read_record(out)


def _key(name: str, settings: Any, inputs: dict[str, Any]) -> str:
    blob = json.dumps(
        {"stage": name, "settings": settings, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _intact(target: Path, kind: str) -> bool:
    try:
        check_kind(target, kind)
    except ContractError:
        return False
    return True


PROGRESS_EVERY = 30.0  # seconds between two progress lines of a running stage


@contextlib.contextmanager
def _progress(quiet: bool, step: str, last: float | None) -> Iterator[None]:
    """Print ``step``'s elapsed time (and an estimate of what is left, from the stage's
    previous duration) every :data:`PROGRESS_EVERY` seconds while the block runs."""
    stop, t0 = threading.Event(), time.perf_counter()

    def beat() -> None:
        while not stop.wait(PROGRESS_EVERY):
            spent = time.perf_counter() - t0
            eta = (
                f", about {_clock(last - spent)} left (last run {_clock(last)})"
                if last and last > spent
                else ""
            )
            _log(quiet, f"{step}: {_clock(spent)} elapsed{eta}")

    thread = threading.Thread(target=beat, daemon=True)
    if not quiet:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"[run] {msg}", file=sys.stderr, flush=True)
