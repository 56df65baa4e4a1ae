"""The Typer application and shared option types of the ``audiograph`` command line."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.models import ParameterInfo

from audiograph.pipeline.stages import section_of

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Graph learning on heterogeneous audio catalogs. Errors print one line (exit 2);"
    " add --debug or set AUDIOGRAPH_DEBUG=1 to see the traceback of an internal error.",
)
prepare_app = typer.Typer(
    no_args_is_help=True, help="Convert a source catalog into a contract dataset directory."
)
app.add_typer(prepare_app, name="prepare")

Out = Annotated[Path, typer.Option("--out", help="Output directory (written atomically).")]
Src = Annotated[Path, typer.Option("--src", help="Folder with the source files.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress output.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run at --out.")]
Distributed = Annotated[
    bool,
    typer.Option(
        "--distributed",
        help="One rank of a torchrun launch (torchrun --nproc-per-node N -m audiograph ...).",
    ),
]


def command(name: str, config: type | None = None, **run: Any) -> Callable[[Callable], Callable]:
    """Register the command ``name``; with ``config`` (a stage's config dataclass) it also
    gets an option per setting, ``--config`` (the TOML table :func:`section_of` names),
    ``--set`` and the run options (``run``: ``out=False`` or ``quiet=False`` for none,
    ``resumes=KIND``, ``distributed=True``); the command reads them all from its ``settings``
    (:func:`~audiograph.pipeline.options.config_options`)."""

    def register(fn: Callable) -> Callable:
        if config is not None:
            from audiograph.pipeline.options import config_options

            fn = config_options(config, section_of(name), **run)(fn)
        return app.command(name)(fn)

    return register


PANELS: dict[str, tuple[str, ...]] = {
    "1 · data and graph": ("prepare", "split", "featurize", "build-graph", "info"),
    "2 · samplers": ("bench-sampler",),
    "3 · HGNN": ("train-hgnn", "export", "neighbors", "embed-users", "bench-train"),
    "4 · two-tower": (
        "train-twotower",
        "train-baseline",
        "evaluate",
        "recommend",
        "score-users",
        "export-twotower",
    ),
    "5 · Semantic IDs and generative": (
        "embed-space",
        "fuse-spaces",
        "semantic-ids",
        "train-generative",
        "train-prefix",
        "generate",
        "evaluate-generative",
    ),
    "pipeline": ("run", "demo"),
}
"""``audiograph --help`` groups the commands by stage: panel -> commands."""


def group_by_stage() -> None:
    """Put every registered command (and the ``prepare`` group) in its stage's help panel;
    a command no panel names is an error, so a new command must choose its stage."""
    panel_of = {c: panel for panel, cmds in PANELS.items() for c in cmds}
    order = [c for cmds in PANELS.values() for c in cmds]
    app.registered_commands.sort(key=lambda cmd: order.index(cmd.name))
    for cmd in app.registered_commands:
        cmd.rich_help_panel = panel_of[cmd.name]
    for group in app.registered_groups:
        group.rich_help_panel = panel_of[group.name]


def rich_safe(text: str) -> str:
    """``text`` as help that rich prints as written: bracketed names (``[users]``,
    ``[default: 5]``) escaped, so rich does not take them for markup and drop them; text
    already escaped stays as it is."""
    from rich.markup import escape

    return escape(text.replace("\\[", "["))


def escape_help(typers: tuple[typer.Typer, ...] = (app,)) -> None:
    """Escape (:func:`rich_safe`) every help text of ``typers``: theirs, their commands'
    (the docstrings) and their commands' options and arguments, sub-groups included.
    Help texts are written plain; this is the one place that makes them safe for rich."""
    for group in typers:
        if isinstance(group.info.help, str):
            group.info.help = rich_safe(group.info.help)
        for cmd in group.registered_commands:
            doc = cmd.help if cmd.help is not None else inspect.getdoc(cmd.callback)
            cmd.help = rich_safe(doc) if doc else doc
            # evaluated once and kept: a string annotation would make new, unescaped options
            hints = typing.get_type_hints(cmd.callback, include_extras=True)
            for name, param in inspect.signature(cmd.callback).parameters.items():
                for info in (*typing.get_args(hints.get(name))[1:], param.default):
                    if isinstance(info, ParameterInfo) and isinstance(info.help, str):
                        info.help = rich_safe(info.help)
            cmd.callback.__annotations__ = hints
        for sub in group.registered_groups:
            if isinstance(sub.help, str):
                sub.help = rich_safe(sub.help)
            escape_help((sub.typer_instance,))
