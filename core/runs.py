"""Training run directories, shared by every trainer through
:class:`~audiograph.core.training.TrainingLoop`: the guard, the config record,
checkpoints, the metrics log, resume.

A run directory holds ``config.json`` (``writer="audiograph"``, ``kind`` such as
``"hgnn-run"``, the stage's settings, and ``inputs``: each input directory's path and
fingerprint), ``metrics.jsonl`` (one JSON line per finished epoch), ``checkpoint.pt``
(tensors only, loaded with ``weights_only=True``) and the stage's weights.

* A new run is created atomically (config and skeleton in a temporary sibling, renamed),
  only where nothing is (or an empty directory): an existing run of the same kind asks for
  ``--resume``, anything else is refused. Nothing is written before that check passes.
* Every checkpoint and weights file is written to a temporary file, fsynced, renamed; the
  epoch's metrics line is appended *before* its checkpoint, and resume drops lines of
  epochs the checkpoint does not hold, so the log and the checkpoint always agree. A
  checkpoint carries the digest of the lines of its epochs: one of another run is refused,
  and the log is trimmed only once the checkpoint is accepted and fits the model (a
  failed resume changes no file).
* ``--resume`` refuses when the recorded inputs changed (their content fingerprint,
  :func:`~audiograph.core.fingerprint.content_fingerprint`: every byte counts) or another
  input path is given. A run recorded before content fingerprints (no ``"content"`` in its
  input entry) is checked by the sizes-and-manifest fingerprint it recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from audiograph.core.atomic import (
    WRITER,
    apply_umask,
    check_overlap,
    crash_point,
    make_temp_dir,
    recover,
    recover_inside,
    resolved,
    swap_in,
    write_bytes,
    write_json,
)
from audiograph.core.errors import ContractError, short_reason
from audiograph.core.fingerprint import content_fingerprint
from audiograph.core.formats import CONFIG, FORMAT_VERSION, check_kind, peek_kind

CHECKPOINT, METRICS, WEIGHTS = "checkpoint.pt", "metrics.jsonl", "model.safetensors"
RESUMABLE = ("epochs", "device", "prefetch")  # settings --resume may change
LOG_DIGEST = "metrics_digest"  # checkpoint key: digest of the metrics lines it follows


def input_record(path: str | os.PathLike) -> dict[str, Any]:
    """A run's record of one input: its path and content fingerprint."""
    return {"path": str(resolved(path)), "fingerprint": content_fingerprint(path), "content": True}


def unchanged(rec: Mapping[str, Any]) -> bool:
    """Whether the input an :func:`input_record` describes still has its recorded content
    (a record without ``content``, of a run started before content fingerprints, by the
    :func:`size_fingerprint` it recorded)."""
    now = content_fingerprint if rec.get("content") else size_fingerprint
    return now(rec["path"]) == rec["fingerprint"]


def size_fingerprint(path: str | os.PathLike) -> str:
    """sha256 over the relative paths and sizes of the files under ``path`` and the bytes
    of its ``manifest.json`` (what runs recorded before content fingerprints; an edit that
    keeps the sizes does not show)."""
    root, h = resolved(path), hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        h.update(f"{f.relative_to(root.parent)}\0{f.stat().st_size}\n".encode())
    if (root / "manifest.json").is_file():
        h.update((root / "manifest.json").read_bytes())
    return h.hexdigest()[:16]


def claim_run(path: str | os.PathLike, kind: str, inputs: Iterable[Any] = ()) -> Path:
    """Check (before any work) that a new ``kind`` run may be created at ``path``."""
    out = resolved(path)
    check_overlap(out, inputs)
    recover(out)
    if out.exists() and not out.is_dir():
        raise ContractError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        found = peek_kind(out)
        if found and found.get("kind") == kind:
            raise ContractError(
                f"--out {out}: already holds a run ({kind}); use --resume to continue it or "
                "choose another --out"
            )
        what = f"a {found['kind']!r}" if found else "not an audiograph run"
        raise ContractError(
            f"--out {out}: exists and is {what} (this command writes a {kind}); choose "
            "another --out"
        )
    return out


SETTINGS_ADDED: dict[str, dict[str, Any]] = {
    "hgnn-run": {"lr_decay": 1.0, "precision": "fp32"},
    "twotower-run": {"skip_vector": "history", "target_negatives": 0, "target_weight": 1.0},
    "generative-run": {"val_examples": 0, "patience": 1},
}
"""Per run kind, settings added after such runs may have been saved, with the value those
runs trained with: a resumed old run keeps its behaviour, not today's default."""


def read_run_config(path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The validated ``config.json`` of the ``kind`` run at ``path`` (one-line errors,
    :func:`~audiograph.core.formats.check_kind`); settings the run predates are filled
    from :data:`SETTINGS_ADDED`."""
    config = check_kind(path, kind)
    if isinstance(config.get("train"), dict):
        config["train"] = {**SETTINGS_ADDED.get(kind, {}), **config["train"]}
    return config


@dataclasses.dataclass
class Run:
    """An open run directory (``config`` is its ``config.json``)."""

    path: Path
    config: dict[str, Any]

    def log(self, row: Mapping[str, Any]) -> None:
        """Append one epoch's metrics line (fsynced)."""
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        crash_point("metrics.logged")

    def metrics(self) -> list[dict[str, Any]]:
        """Every complete line of ``metrics.jsonl`` (a torn last line is skipped)."""
        rows = []
        for line in (self.path / METRICS).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Write ``checkpoint.pt`` (tensors, lists and dicts of them) atomically, stamped
        with the digest of the metrics lines of its epochs (:meth:`load_checkpoint` refuses
        a checkpoint whose lines are not this run's)."""
        buf = io.BytesIO()
        torch.save({**state, LOG_DIGEST: self._digest(int(state["epoch"]))}, buf)
        write_bytes(self.path / CHECKPOINT, buf.getvalue(), point="checkpoint")

    def load_checkpoint(
        self,
        device: torch.device | str,
        required: tuple[str, ...] = (),
        restore: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """The checkpoint (None when no epoch finished yet) with at least the keys
        ``model``, ``epoch`` and ``required``. Corrupt, truncated, foreign or unsafe files,
        and a checkpoint of another run, are one-line errors that change no file.
        ``restore(ckpt)`` loads it into the model and optimizers (raising if it does not
        fit); only once it has are metrics lines of epochs after the checkpoint dropped."""
        f = self.path / CHECKPOINT
        if not f.exists():
            if logged := [r for r in self.metrics() if int(r.get("epoch", -1)) > 0]:
                raise ContractError(
                    f"--resume: {f} is missing but {METRICS} records "
                    f"{int(logged[-1]['epoch']) + 1} epochs; restore it or start a new run"
                )
            self._keep_metrics(0)
            return None
        try:
            ckpt = torch.load(f, weights_only=True, map_location=device)
        except Exception as exc:  # pickle, zip and unsafe-global errors alike
            msg = f"{f}: not a readable audiograph checkpoint ({short_reason(exc)})"
            raise ContractError(msg) from None
        missing = (
            [k for k in ("model", "epoch", *required) if k not in ckpt]
            if isinstance(ckpt, dict)
            else ["model"]
        )
        if missing:
            raise ContractError(f"{f}: not an audiograph checkpoint of this run (no {missing[0]})")
        epochs = int(ckpt["epoch"])
        if LOG_DIGEST in ckpt and ckpt.pop(LOG_DIGEST) != self._digest(epochs):
            raise ContractError(
                f"{f}: belongs to another run (its {epochs} epochs are not the ones "
                f"{METRICS} records); restore this run's checkpoint or start a new run"
            )
        if restore is not None:
            restore(ckpt)
        self._keep_metrics(epochs)
        return ckpt

    def _rows(self, epochs: int) -> str:
        """The metrics lines of the epochs before ``epochs``, as :meth:`log` wrote them."""
        rows = [r for r in self.metrics() if int(r.get("epoch", -1)) < epochs]
        return "".join(json.dumps(r) + "\n" for r in rows)

    def _digest(self, epochs: int) -> str:
        return hashlib.sha256(self._rows(epochs).encode()).hexdigest()[:16]

    def _keep_metrics(self, epochs: int) -> None:
        text = self._rows(epochs)
        if text != (self.path / METRICS).read_text():
            write_bytes(self.path / METRICS, text.encode())

    def save_weights(self, tensors: Mapping[str, torch.Tensor], name: str = WEIGHTS) -> None:
        """Write a safetensors file atomically (contiguous CPU copies)."""
        from safetensors.torch import save

        flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        write_bytes(self.path / name, save(flat), point="weights")

    def save_folder(self, name: str, write: Callable[[Path], None]) -> None:
        """Replace the sub-folder ``name`` by what ``write(tmp)`` puts in a fresh folder."""
        target = self.path / name
        recover(target)
        tmp = make_temp_dir(target)
        write(tmp)
        apply_umask(tmp)
        swap_in(tmp, target)


def start_run(
    path: str | os.PathLike,
    kind: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, str | os.PathLike | None],
    setup: Callable[[Path], None] | None = None,
) -> Run:
    """Create the ``kind`` run at ``path`` atomically: ``config.json`` (plus ``inputs``
    with fingerprints), an empty metrics log and whatever ``setup(tmp)`` writes."""
    out = claim_run(path, kind, inputs.values())
    record = {
        "writer": WRITER,
        "kind": kind,
        "format_version": FORMAT_VERSION,
        **config,
        "inputs": {k: input_record(p) for k, p in inputs.items() if p is not None},
    }
    tmp = make_temp_dir(out)
    try:
        write_json(tmp / CONFIG, record)
        (tmp / METRICS).write_text("")
        if setup is not None:
            setup(tmp)
        apply_umask(tmp)
        if out.is_dir():
            out.rmdir()  # claim_run checked it is empty
        swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Run(out, record)


def resume_run(
    path: str | os.PathLike, kind: str, inputs: Mapping[str, str | os.PathLike | None]
) -> Run:
    """Open the ``kind`` run at ``path`` for ``--resume``. Each input given must be the
    recorded one, and every recorded input must be unchanged since the run started."""
    run = Path(path)
    recover(resolved(run))
    if not (run / CONFIG).exists():
        raise ContractError(f"--resume: nothing to resume in {run} (no run there)")
    config = read_run_config(run, kind)
    recover_inside(run)
    recorded = config.get("inputs") or {}
    for name, given in inputs.items():
        if given is None or name not in recorded:
            continue
        if str(resolved(given)) != recorded[name]["path"]:
            raise ContractError(
                f"--resume: {run} was trained on {recorded[name]['path']}, not {resolved(given)}"
            )
    for name, rec in recorded.items():
        if not Path(rec["path"]).exists():
            raise ContractError(f"--resume: the run's {name} {rec['path']} no longer exists")
        if not unchanged(rec):
            raise ContractError(
                f"--resume: the run's {name} {rec['path']} changed since the run started; "
                "start a new run"
            )
    return Run(resolved(run), config)


def resumed_config(cls: type, saved: Mapping[str, Any], given: Any | None, source: str) -> Any:
    """The config of a resumed run: the saved one, where ``given`` (if any) may change only
    :data:`RESUMABLE` fields; any other difference is a one-line error, but for a given
    ``"auto"``, which keeps what the run resolved it to."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        base = cls(**{k: v for k, v in saved.items() if k in names})
    except (TypeError, ValueError) as exc:
        raise ContractError(f"{source}: the saved settings are not valid ({exc})") from None
    if given is None:
        return base
    for f in dataclasses.fields(cls):
        new, old = getattr(given, f.name), getattr(base, f.name)
        if f.name not in RESUMABLE and new != old and new != "auto":
            raise ContractError(
                f"--resume: '{f.name}' is {new!r} but the run was started with {old!r} "
                f"(only {', '.join(RESUMABLE)} may change when resuming)"
            )
    return dataclasses.replace(base, **{k: getattr(given, k) for k in RESUMABLE if k in names})


def exact(value: float | int) -> torch.dtype:
    """The checkpoint dtype that stores ``value`` exactly (a float32 best score would be
    rounded, and a resumed run could then count a tie as an improvement)."""
    return torch.float64 if isinstance(value, float) else torch.int64


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; missing, truncated or foreign files are one line."""
    from safetensors.torch import load_file

    f = Path(path)
    if not f.is_file():
        raise ContractError(f"{f}: file not found")
    try:
        return load_file(str(f))
    except Exception as exc:  # SafetensorError, header/IO errors
        raise ContractError(f"{f}: not a readable safetensors file ({short_reason(exc)})") from None


def restorer(file: Path, **targets: Any) -> Callable[[dict[str, Any]], None]:
    """A ``restore`` for :meth:`Run.load_checkpoint`: the checkpoint's entry ``key`` into
    ``targets[key]`` (a module or optimizer, or a list of them for a list entry), each
    mismatch one line."""

    def restore(ckpt: dict[str, Any]) -> None:
        for key, target in targets.items():
            many, saved = isinstance(target, list), ckpt[key]
            if many and (not isinstance(saved, list) or len(saved) != len(target)):
                raise ContractError(f"{file}: weights do not fit this model ({key} differ)")
            for t, state in zip(target, saved, strict=True) if many else [(target, saved)]:
                load_state(t, state, file)

    return restore


def load_state(module: torch.nn.Module, state: Mapping[str, Any], file: Path, **kw: Any) -> None:
    """``module.load_state_dict(state)``, with a mismatch reported as one line."""
    try:
        module.load_state_dict(state, **kw)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError(
            f"{file}: weights do not fit this model ({short_reason(first)})"
        ) from None
