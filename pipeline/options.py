"""Command-line options generated from a stage's config dataclass.

:func:`config_options` gives a Typer command one ``--option`` per field of the config
(name, type and default from the field, help from the class's ``Attributes:`` docs), plus
``--config FILE.toml`` (its ``[section]`` table) and a repeatable ``--set key=value``, and
the options of how the stage runs, the same for every stage: ``--out``, ``--quiet`` and,
where the stage has them, ``--resume`` and ``--distributed``. The command receives a
:class:`Settings` and builds the config with :meth:`Settings.build`: defaults < a resumed
run's saved settings < the file < ``--set`` < the flags.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from audiograph.core.config import (
    describe,
    field_docs,
    fits,
    merge,
    parse_assignments,
    parse_text,
)
from audiograph.core.errors import ContractError
from audiograph.pipeline.app import Distributed, Out, Quiet, Resume

_PLAIN = (int, float, str)
SECTIONS: set[str] = set()
"""The ``--config`` tables of the commands (each :func:`config_options` adds its own)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the command line said about a config (the file, ``--set`` and the flags) and
    how the stage runs (``out``, ``quiet``, ``resume`` of a run of kind ``resumes``,
    ``distributed``)."""

    cls: type
    section: str
    config: Path | None
    flags: dict[str, Any]
    assignments: tuple[str, ...]
    out: Path | None = None
    quiet: bool = False
    resume: bool = False
    distributed: bool = False
    resumes: str | None = None

    def build(self, base: dict[str, Any] | None = None, **fixed: Any) -> Any:
        """The validated config. ``base``: saved settings to start from (default: with
        ``resume``, those of the run at ``out``); ``fixed``: values the command derives
        from its own options (``None``: not given)."""
        from audiograph.pipeline.config import read_section, resume_base
        from audiograph.pipeline.stages import NAMES

        if base is None and self.resume:
            base = resume_base(self.out, self.resumes)
        hints = typing.get_type_hints(self.cls)
        values = read_section(self.config, self.section, {*SECTIONS, *NAMES, "experiment"})
        for key, text in parse_assignments(list(self.assignments)).items():
            if key not in hints:
                raise ContractError(
                    f"--set: unknown option '{key}' (known: {', '.join(sorted(hints))})"
                )
            values[key] = _checked(f"--set {key}", text, hints[key])
        flags = {
            k: v
            if v is None or _plain(hints[k])
            else _checked("--" + k.replace("_", "-"), v, hints[k])
            for k, v in self.flags.items()
        }
        flags.update({k: v for k, v in fixed.items() if v is not None})
        source = str(self.config) if self.config else "--set"
        return merge(self.cls, values, flags, source, base)


def _checked(option: str, text: str, hint: Any) -> Any:
    """``text`` parsed as a ``hint`` value, or a one-line error naming ``option``."""
    value = parse_text(text, hint)
    if not fits(value, hint):
        raise ContractError(f"{option}: expected {describe(hint)}, got {text!r}")
    return value


def _plain(hint: Any) -> Any:
    """The option type Typer parses itself (``int``, ``float``, ``str``, ``bool``), or None
    when the option is text parsed by :func:`~audiograph.core.config.parse_text`."""
    base = hint
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if len(args) == 1 else None
    return base if base in (*_PLAIN, bool) else None


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _parameter(f: dataclasses.Field, hint: Any, doc: str) -> inspect.Parameter:
    flag = "--" + f.name.replace("_", "-")
    shown = _shown(_default(f))
    help_ = f"{doc.replace('``', '')} [default: {shown}]".strip()
    kind = _plain(hint)
    if kind is bool:
        option = typer.Option(f"{flag}/--no-{flag[2:]}", help=help_, show_default=False)
    else:
        option = typer.Option(flag, help=help_, show_default=False)
    annotation = Annotated[(kind or str) | None, option]
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


def _run_options(
    out: bool, resumes: str | None, distributed: bool, quiet: bool
) -> list[inspect.Parameter]:
    """The options of how a stage runs, as keyword parameters of a command."""
    kinds = {
        "out": (Out, ..., out),
        "resume": (Resume, False, resumes is not None),
        "distributed": (Distributed, False, distributed),
        "quiet": (Quiet, False, quiet),
    }
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, (kind, default, wanted) in kinds.items()
        if wanted
    ]


def config_options(
    cls: type,
    section: str,
    *,
    out: bool = True,
    resumes: str | None = None,
    distributed: bool = False,
    quiet: bool = True,
) -> Callable[[Callable], Callable]:
    """Decorator of a Typer command taking ``settings: Settings``: adds an option per field
    of ``cls`` that the command does not declare itself, ``--config``, ``--set`` and the
    run options: ``--out`` (with ``out``), ``--resume`` (a run of kind ``resumes``),
    ``--distributed`` (with ``distributed``) and ``--quiet`` (with ``quiet``)."""

    SECTIONS.add(section)

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        resolved = typing.get_type_hints(fn, include_extras=True)
        own = [
            p.replace(annotation=resolved.get(name, p.annotation))
            for name, p in sig.parameters.items()
            if name != "settings"
        ]
        taken = {p.name for p in own}
        run = [p for p in _run_options(out, resumes, distributed, quiet) if p.name not in taken]
        hints, docs = typing.get_type_hints(cls), field_docs(cls)
        added = [
            _parameter(f, hints[f.name], docs.get(f.name, ""))
            for f in dataclasses.fields(cls)
            if f.name not in taken
        ]
        names = [p.name for p in added]
        extra = [
            inspect.Parameter(
                "config",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    Path | None,
                    typer.Option(
                        help=f"TOML file whose [{section}] table sets these "
                        "options (flags and --set win)."
                    ),
                ],
            ),
            inspect.Parameter(
                "set_",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    list[str] | None,
                    typer.Option(
                        "--set",
                        metavar="KEY=VALUE",
                        help="Set any option, e.g. --set hidden=64 (repeatable).",
                    ),
                ],
            ),
        ]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            flags = {name: kwargs.pop(name) for name in names}
            how = {p.name: kwargs.pop(p.name) for p in run}
            kwargs["settings"] = Settings(
                cls,
                section,
                kwargs.pop("config"),
                flags,
                tuple(kwargs.pop("set_") or ()),
                resumes=resumes,
                **how,
            )
            return fn(**kwargs)

        out_first = [p for p in run if p.name == "out"]
        params = [*own, *out_first, *added, *[p for p in run if p.name != "out"], *extra]
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
