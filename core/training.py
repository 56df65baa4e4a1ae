"""The training skeleton every trainer fills (``train-hgnn``, ``train-twotower``,
``train-generative``, ``train-prefix``): claim or resume the run directory, restore the last
checkpoint, run epochs until early stopping, keep the best weights, write one metrics line
and one checkpoint per epoch; under ``torchrun`` rank 0 writes for every rank. A trainer
reads::

    loop = TrainingLoop("train-x", KIND, run_dir, {"data_dir": data_dir}, world, quiet)
    cfg = loop.open(XConfig, cfg, resume, options)  # claim a new run, or resume one
    data_dir = loop.inputs["data_dir"]            # on resume: the run's own inputs
    model, opt = ...                              # the stage's model and optimizer
    loop.start(config, model, {"optimizer": opt}) # write the new run, or restore it
    for epoch in loop.epochs(cfg.epochs, cfg.patience):
        ...                                       # the stage's batches, steps, validation
        loop.end_epoch(metrics, score, "loss 0.1234, 3.2s")
    loop.close()

The batch order of every trainer is a pure function of ``(seed, epoch)``, so a resumed
run ends with the weights of an uninterrupted one (the checkpoint holds the model, the
optimizers and :class:`Progress`; the files' guarantees are :mod:`audiograph.core.runs`').
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from audiograph.core.config import configure
from audiograph.core.distributed import World, barrier, finish, shared_checkpoint, shared_run
from audiograph.core.errors import ContractError
from audiograph.core.finite import check_weights
from audiograph.core.runs import (
    CHECKPOINT,
    RESUMABLE,
    Run,
    claim_run,
    exact,
    restorer,
    resume_run,
    resumed_config,
    start_run,
)


@dataclasses.dataclass
class Progress:
    """Where a run stands, saved with every checkpoint (a key an older checkpoint lacks
    keeps its default)."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken (for schedules that count steps)
    best: float = math.nan  # best validation score so far (NaN: none yet)
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs since the best


@dataclasses.dataclass
class TrainingLoop:
    """One run's bookkeeping. ``inputs``: ``{config key: input path}``, recorded with
    fingerprints and checked on resume; ``higher_is_better``: the direction of the
    validation score given to :meth:`end_epoch`."""

    name: str
    kind: str
    run_dir: str | Path
    inputs: dict[str, Any]
    world: World = dataclasses.field(default_factory=World)
    quiet: bool = False
    higher_is_better: bool = True
    advice: str = ""  # the divergence message's hint, e.g. "try a lower --lr (now 0.01)"
    run: Run | None = None
    progress: Progress = dataclasses.field(default_factory=Progress)
    model: torch.nn.Module | None = None
    optimizers: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def open(
        self,
        cls: type,
        cfg: Any | None,
        resume: bool,
        options: Mapping[str, Any] | None = None,
        claims: Iterable[Any] = (),
    ) -> Any:
        """The run's config: on ``resume`` the saved one (``cfg`` and ``options`` may change
        only epochs, device and prefetch) and ``inputs`` become the run's own; else ``cfg``
        (or the defaults) with keyword ``options`` applied, once the output directory is
        checked free (``claims``: more paths it must not overlap)."""
        options = dict(options or {})
        if resume:
            self.run = shared_run(
                self.world,
                lambda: resume_run(self.run_dir, self.kind, self.inputs),
                self.run_dir,
                self.kind,
            )
            self.inputs = {k: self.run.config[k] for k in self.inputs}
            saved = resumed_config(cls, self.run.config["train"], cfg, str(self.run.path))
            if fixed := sorted(set(options) - set(RESUMABLE)):
                raise ContractError(
                    f"--resume: '{fixed[0]}' cannot change when resuming "
                    f"(only {', '.join(RESUMABLE)} may)"
                )
            return configure(cls, saved, options, self.name)
        cfg = configure(cls, cfg, options, self.name)
        if self.world.main:
            claim_run(self.run_dir, self.kind, [*self.inputs.values(), *claims])
        return cfg

    def start(
        self,
        config: Mapping[str, Any],
        model: torch.nn.Module,
        optimizers: Mapping[str, Any],
        more_inputs: Mapping[str, Any] | None = None,
        setup: Callable[[Path], None] | None = None,
    ) -> Progress:
        """A new run: write its directory (``config``, ``inputs`` plus ``more_inputs``,
        whatever ``setup(tmp)`` adds). A resumed one: load the checkpoint into ``model``
        and ``optimizers`` (``{checkpoint key: optimizer or list of them}``)."""
        self.model, self.optimizers = model, optimizers
        if self.run is None:
            inputs = {**self.inputs, **(more_inputs or {})}
            self.run = shared_run(
                self.world,
                lambda: start_run(self.run_dir, self.kind, config, inputs, setup),
                self.run_dir,
                self.kind,
            )
            return self.progress
        restore = restorer(self.run.path / CHECKPOINT, model=model, **optimizers)
        device = next(model.parameters()).device
        ckpt = shared_checkpoint(self.run, device, tuple(optimizers), self.world, restore)
        if ckpt is not None:
            saved = {f.name: f.default for f in dataclasses.fields(Progress) if f.name in ckpt}
            self.progress = Progress(**{k: type(v)(ckpt[k].item()) for k, v in saved.items()})
        return self.progress

    def epochs(self, epochs: int, patience: int) -> Iterator[int]:
        """The epochs left, until ``epochs`` or ``patience`` epochs without a better score."""
        while self.progress.epoch < epochs and self.progress.bad_epochs < patience:
            yield self.progress.epoch

    def end_epoch(
        self,
        metrics: Mapping[str, Any],
        score: float | None,
        line: str,
        save_best: Callable[[], None] | None = None,
    ) -> bool:
        """Close the epoch: check the weights are finite, compare ``score`` (``None``: no
        validation, every epoch counts as the best), keep the best weights
        (``save_best()``, by default ``model.safetensors``), log ``metrics``, write the
        checkpoint, print ``line``. Returns whether the epoch was the best so far."""
        p, epoch = self.progress, self.progress.epoch
        check_weights(self.model, epoch, self.advice)
        better = score is not None and (score > p.best if self.higher_is_better else score < p.best)
        improved = score is None or math.isnan(p.best) or better
        p.epoch, p.bad_epochs = epoch + 1, 0 if improved else p.bad_epochs + 1
        if improved:
            p.best, p.best_epoch = p.best if score is None else score, epoch
        if self.world.main:
            if improved:
                (save_best or self._save_weights)()
            self.run.log(metrics)
            self.run.save_checkpoint(self._state())
        barrier(self.world)
        if not self.quiet and self.world.main:
            tqdm.write(f"[{self.name}] epoch {epoch}: {line}")
        return improved

    def close(self) -> None:
        """Leave the process group (distributed runs)."""
        finish(self.world)

    def _save_weights(self) -> None:
        self.run.save_weights(self.model.state_dict())

    def _state(self) -> dict[str, Any]:
        def saved(opt: Any) -> Any:
            return [o.state_dict() for o in opt] if isinstance(opt, list) else opt.state_dict()

        progress = dataclasses.asdict(self.progress)
        return {
            "model": self.model.state_dict(),
            **{key: saved(opt) for key, opt in self.optimizers.items()},
            **{k: torch.tensor(v, dtype=exact(v)) for k, v in progress.items()},
        }


def adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.01):  # noqa: ANN201
    """AdamW, fused where this torch build has the kernel for the parameters' device (the
    same update, one kernel per step instead of a loop of small ops)."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # no fused kernel for this device (e.g. CPU before torch 2.4)
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
