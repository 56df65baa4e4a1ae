"""The stages of an experiment, declared once: name, config, inputs and output kind.

Each stage reads its inputs (earlier stages' outputs, or a folder the experiment names)
only as directories on disk and writes one output of its kind; :mod:`.runner` runs them in
this order, caching each output by a hash of its settings and its inputs (what each
stage reads: :data:`STAGES`).

A stage is named after its command's object (:func:`section_of`: ``build-graph`` runs
as ``[graph]``), the name its ``--config`` table has too.

Every config is a frozen dataclass in its stage's ``config`` module (``graphs.config``,
``hgnn.config``, ``twotower.config``, ``semantic_ids.config``).

| stage | command | writes (kind) | config |
|---|---|---|---|
| ``prepare`` | ``prepare`` | ``dataset`` | ``adapter`` + the adapter's arguments |
| ``split`` | ``split`` | ``split`` | ``SplitConfig`` |
| ``graph`` | ``build-graph`` | ``graph`` | ``GraphConfig`` |
| ``hgnn`` | ``train-hgnn`` | ``hgnn-run`` | ``HGNNConfig`` |
| ``export`` | ``export`` | ``embeddings`` | ``ExportConfig`` |
| ``twotower`` | ``train-twotower`` | ``twotower-run`` | ``TwoTowerConfig`` |
| ``baseline`` | ``train-baseline`` | ``twotower-run`` | ``[twotower]`` + its own, no HGNN |
| ``evaluate`` | ``evaluate`` | ``evaluation`` | ``EvaluationConfig`` |
| ``semantic_ids`` | ``semantic-ids`` | ``semantic-ids`` | ``SemanticIDConfig`` |
| ``generative`` | ``train-generative`` | ``generative-run`` | ``GenerativeConfig`` |
| ``users`` | ``embed-users`` | ``user-vectors`` | ``UserVectorsConfig`` |
| ``prefix`` | ``train-prefix`` | ``prefix-run`` | ``PrefixConfig`` |
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiograph.core.atomic import atomic_dir, write_json
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION, MANIFEST

Inputs = dict[str, Path]


VERBS = ("build", "train", "embed")
"""Leading words of a command that say what it does to its object (``train-hgnn``)."""


def section_of(command: str) -> str:
    """The one naming rule of commands, ``--config`` tables and runner stages: a command
    is ``[VERB-]OBJECT`` (``build-graph``, ``train-hgnn``, ``split``, ``semantic-ids``);
    its TOML table and the runner stage that runs it are named ``OBJECT``, with ``_`` for
    ``-`` (``[graph]``, ``[hgnn]``, ``[split]``, ``[semantic_ids]``)."""
    verb, _, rest = command.partition("-")
    return (rest if verb in VERBS and rest else command).replace("-", "_")


@dataclass(frozen=True)
class Stage:
    """One step: ``run(settings, inputs, out)`` does what the command ``command`` does and
    writes the ``kind`` output ``out``; the stage's name is :func:`section_of` the command.

    ``inputs`` maps an input name to ``(stage, sub-folder)``. ``config`` loads the stage's
    config class (a frozen dataclass that validates itself; imported on first use, so that
    ``audiograph run --help`` stays fast); ``prepare`` has none: its settings are the
    keyword arguments of the adapter its table names."""

    command: str
    kind: str
    inputs: dict[str, tuple[str, str]]
    run: Callable[[Any, Inputs, Path], None]
    config: Callable[[], type] | None = None
    optional: tuple[str, ...] = ()  # inputs used only when their stage is in the experiment
    fallback: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    """inputs read from another stage when theirs is not in the experiment"""
    needs: Callable[[Any], dict[str, str]] | None = None
    """``needs(settings)``: the inputs the stage reads with these settings, each with the
    setting that makes it needed (``""``: always); None: every input but the optional ones"""

    @property
    def name(self) -> str:
        """The stage's TOML table and output folder: the command's object."""
        return section_of(self.command)

    def source(self, arg: str, present: set[str] | dict[str, Any]) -> tuple[str, str]:
        """Where input ``arg`` comes from, given the stages ``present``."""
        src = self.inputs[arg]
        return self.fallback[arg] if src[0] not in present and arg in self.fallback else src

    def required(self, settings: Any) -> dict[str, str]:
        """``{input: why}``: the inputs the stage cannot run without, given its settings
        (the one place that knows; the runner checks them all before any stage runs)."""
        if self.needs is not None:
            return self.needs(settings)
        return {arg: "" for arg in self.inputs if arg not in self.optional}


def _adapter(settings: dict[str, Any], where: str) -> tuple[Callable[..., Any], dict]:
    """The adapter function a ``[prepare]`` table names and its checked arguments."""
    from audiograph.graphs.adapters import douban, lastfm, podcasts, synthetic

    adapters = {
        "synthetic": synthetic.prepare_synthetic,
        "lastfm": lastfm.prepare_lastfm,
        "douban": douban.prepare_douban,
        "podcasts": podcasts.prepare_podcasts,
    }
    kwargs = dict(settings)
    name = kwargs.pop("adapter", None)
    if name not in adapters:
        raise ContractError(f"{where}: adapter must be one of {', '.join(adapters)}, got {name!r}")
    check_kwargs(f"{where} ({name})", adapters[name], kwargs)
    return adapters[name], kwargs


def _prepare(settings: dict[str, Any], inputs: Inputs, out: Path) -> None:
    fn, kwargs = _adapter(settings, "[prepare]")
    fn(out=out, **kwargs)


def _split(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.graphs.split import split_dataset

    split_dataset(inputs["data"], out, cfg, quiet=True)


def _graph(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.graphs.build import build_graph

    build_graph(inputs["data"], out, cfg, quiet=True)


def _hgnn(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.hgnn.train import train_hgnn

    train_hgnn(inputs["graph"], out, cfg, quiet=True)


def _export(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.hgnn.export import export_embeddings

    export_embeddings(inputs["run"], out, inputs["catalog"], cfg, quiet=True)


def _twotower(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.twotower.train import train_twotower

    train_twotower(inputs["data"], inputs["emb"] if cfg.use_hgnn else None, out, cfg, quiet=True)


def _baseline(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.twotower.train import train_twotower

    train_twotower(inputs["data"], None, out, cfg, quiet=True)


def evaluation(cfg: Any, inputs: Inputs) -> dict[str, Any]:
    """The evaluate report of the two-tower run ``inputs["run"]`` on ``inputs["test"]``
    and the baselines (``2t`` from ``inputs["baseline"]`` when the experiment has one)."""
    from audiograph.twotower.evaluate import evaluate_run

    baseline = inputs.get("baseline")
    return evaluate_run(inputs["run"], inputs["test"], cfg, baseline_dir=baseline, quiet=True)


def _evaluate(cfg: Any, inputs: Inputs, out: Path) -> None:
    report = evaluation(cfg, inputs)
    with atomic_dir(out, "evaluation", [inputs["run"], inputs["test"]]) as tmp:
        write_json(tmp / "report.json", report)
        manifest = {
            "kind": "evaluation",
            "format_version": FORMAT_VERSION,
            "run": str(inputs["run"]),
            "test": str(inputs["test"]),
        }
        write_json(tmp / MANIFEST, manifest)


def _semantic_ids(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.semantic_ids.assign import semantic_ids

    semantic_ids(inputs["emb"], out, cfg, quiet=True)


def _generative(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.semantic_ids.generative_train import train_generative

    train_generative(inputs["data"], inputs["sid"], out, cfg, quiet=True)


def _twotower_needs(cfg: Any) -> dict[str, str]:
    return {"data": "", **({"emb": "use_hgnn = true"} if cfg.use_hgnn else {})}


def _users_needs(cfg: Any) -> dict[str, str]:
    return {"data": "", {"twotower": "run", "hgnn": "emb"}[cfg.source]: f"source = {cfg.source!r}"}


def _users(cfg: Any, inputs: Inputs, out: Path) -> None:
    if cfg.source == "twotower":
        from audiograph.twotower.serve import export_user_vectors

        export_user_vectors(inputs["run"], out, inputs["data"])
    else:
        from audiograph.hgnn.user_means import export_user_means

        export_user_means(inputs["emb"], inputs["data"], out, cfg.weighted, quiet=True)


def _prefix(cfg: Any, inputs: Inputs, out: Path) -> None:
    from audiograph.semantic_ids.prefix_train import train_prefix

    train_prefix(inputs["generative"], inputs["users"], out, cfg, quiet=True)


def _config(package: str, name: str) -> Callable[[], type]:
    """Loads the config class ``name`` of ``audiograph.<package>.config`` on first use."""

    def load() -> type:
        import importlib

        return getattr(importlib.import_module(f"audiograph.{package}.config"), name)

    return load


# fmt: off
STAGES: list[Stage] = [  # command, output kind, {input: (stage, sub-folder)}, run, config
    Stage("prepare", "dataset", {}, _prepare),
    Stage("split", "split", {"data": ("prepare", "")}, _split, _config("graphs", "SplitConfig")),
    Stage("build-graph", "graph", {"data": ("split", "graph")}, _graph,
          _config("graphs", "GraphConfig"),
          fallback={"data": ("prepare", "")}),  # no [split]: the graph of all the data
    Stage("train-hgnn", "hgnn-run", {"graph": ("graph", "")}, _hgnn,
          _config("hgnn", "HGNNConfig")),
    Stage("export", "embeddings", {"run": ("hgnn", ""), "catalog": ("split", "train")},
          _export, _config("hgnn", "ExportConfig")),
    Stage("train-twotower", "twotower-run", {"data": ("split", "train"), "emb": ("export", "")},
          _twotower, _config("twotower", "TwoTowerConfig"), optional=("emb",),
          needs=_twotower_needs),
    Stage("train-baseline", "twotower-run", {"data": ("split", "train")}, _baseline,
          _config("twotower", "TwoTowerConfig")),
    Stage("evaluate", "evaluation", {"run": ("twotower", ""), "test": ("split", "test"),
                                     "baseline": ("baseline", "")},
          _evaluate, _config("twotower", "EvaluationConfig"), optional=("baseline",)),
    Stage("semantic-ids", "semantic-ids", {"emb": ("export", "")}, _semantic_ids,
          _config("semantic_ids", "SemanticIDConfig")),
    Stage("train-generative", "generative-run", {"data": ("split", "train"),
                                                 "sid": ("semantic_ids", "")},
          _generative, _config("semantic_ids", "GenerativeConfig")),
    Stage("embed-users", "user-vectors", {"data": ("split", "train"), "run": ("twotower", ""),
                                          "emb": ("export", "")},
          _users, _config("semantic_ids", "UserVectorsConfig"), optional=("run", "emb"),
          fallback={"data": ("prepare", "")}, needs=_users_needs),
    Stage("train-prefix", "prefix-run", {"generative": ("generative", ""),
                                         "users": ("users", "")},
          _prefix, _config("semantic_ids", "PrefixConfig")),
]
# fmt: on

NAMES = [s.name for s in STAGES]
BY_NAME = {s.name: s for s in STAGES}
# keyword arguments an adapter's stage fills itself (never settings)
_RESERVED = {"out", "quiet"}


def settings_of(fn: Callable[..., Any]) -> dict[str, Any]:
    """The settings ``fn`` takes (name -> type): its parameters but the ones the stage
    fills (``out``, ``quiet``) and, for a ``cfg`` config dataclass with ``**options``, the
    config's fields instead."""
    hints = typing.get_type_hints(fn)
    params = inspect.signature(fn).parameters
    found = {}
    for name, p in params.items():
        if name in _RESERVED or p.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        cls = [a for a in typing.get_args(hints.get(name)) if dataclasses.is_dataclass(a)]
        if name == "cfg" and cls:
            found |= typing.get_type_hints(cls[0])
        else:
            found[name] = hints.get(name, Any)
    return found


def check_kwargs(where: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """One-line error for a setting ``fn`` does not take (:func:`settings_of`), or one
    whose value does not have the type of ``fn``'s parameter."""
    from audiograph.core.config import check_values

    known = settings_of(fn)
    for key in kwargs:
        if key not in known:
            raise ContractError(f"{where}: unknown setting '{key}' (known: {', '.join(known)})")
    check_values({k: known[k] for k in kwargs}, kwargs, where)


def build_settings(
    name: str,
    table: dict[str, Any],
    seed: int | None,
    source: str,
    twotower: dict[str, Any] | None = None,
) -> Any:
    """The validated settings of stage ``name`` from its TOML table (the experiment's
    ``seed`` applies where the stage takes one and sets none; ``baseline`` starts from
    the ``twotower`` table)."""
    from audiograph.core.config import merge

    stage, table = BY_NAME[name], dict(table)
    if name == "baseline":  # the plain two-tower: the two-tower's settings, no HGNN inputs
        table = {**(twotower or {}), **table, "use_hgnn": False}
    where = f"{source} [{name}]"
    if stage.config is None:  # prepare: the adapter named in the table
        target, _ = _adapter(table, where)
        if seed is not None and "seed" in settings_of(target):
            table.setdefault("seed", seed)
        return table
    cls = stage.config()
    if seed is not None and "seed" in {f.name for f in dataclasses.fields(cls)}:
        table.setdefault("seed", seed)
    return merge(cls, table, {}, where, table=True)
