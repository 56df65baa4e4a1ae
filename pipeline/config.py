"""Stage configs from an optional TOML file plus command-line overrides.

A config file has one table per stage, named like the stage's dataclass field names::

    [graph]
    min_users = 2
    user_cap = 200
    top_k = 30
    signals = ["stream", "follow"]

Flags given on the command line win over the file; the file wins over the defaults.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from audiograph.core.errors import ContractError
from audiograph.graphs.build import GraphConfig


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict (the project's one TOML loader; one-line errors)."""
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ContractError(f"{path}: cannot read config ({exc})") from None


def read_section(path: Path | None, section: str) -> dict[str, Any]:
    """The ``[section]`` table of a TOML file (empty when ``path`` is None)."""
    if path is None:
        return {}
    doc = read_toml(path)
    table = doc.get(section, {})
    if not isinstance(table, dict):
        raise ContractError(f"{path}: [{section}] must be a table")
    return table


def merge(
    cls: type,
    file_values: dict[str, Any],
    overrides: dict[str, Any],
    source: str,
    base: dict[str, Any] | None = None,
) -> Any:
    """Instantiate dataclass ``cls`` from ``base`` (defaults when None; a resumed run's
    saved settings) < file values < non-None overrides. Unknown names, values of the wrong
    type and invalid settings (the dataclass validates itself) are one-line errors."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ContractError(
            f"{source}: unknown option '{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    hints = typing.get_type_hints(cls)
    given = {k: v for k, v in overrides.items() if v is not None}
    for where, values in ((source, file_values), ("flags", given)):
        for k, v in values.items():
            if not _fits(v, hints[k]):
                raise ContractError(
                    f"{where}: option '{k}' must be {_describe(hints[k])}, got {v!r}"
                )
    values = {**(base or {}), **file_values, **given}
    try:
        return cls(**{k: v for k, v in values.items() if k in names})
    except TypeError as exc:
        raise ContractError(f"{source}: {exc}") from None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a TOML / flag value has the type ``hint`` (ints count as floats; a bool is
    never a number)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        inner = args[0] if args else Any
        return inner is Any or all(_fits(v, inner) for v in value)
    if origin is None and isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_describe(args[0])}" if args else "a list"
    return "none" if hint is type(None) else getattr(hint, "__name__", str(hint))


def resume_base(run_dir: Path, kind: str) -> dict[str, Any]:
    """The saved settings of the ``kind`` run at ``run_dir`` (the base of ``--resume``)."""
    from audiograph.core.runs import read_run_config

    return dict(read_run_config(run_dir, kind).get("train", {}))


def graph_config(path: Path | None = None, **overrides: Any) -> GraphConfig:
    """``GraphConfig`` from a TOML ``[graph]`` table and CLI flags.

    ``user_cap=0`` and ``top_k=0`` mean "no limit"; ``signals`` may be a comma-separated string.
    """
    if isinstance(overrides.get("signals"), str):
        overrides["signals"] = [s.strip() for s in overrides["signals"].split(",") if s.strip()]
    cfg = merge(GraphConfig, read_section(path, "graph"), overrides, str(path or "flags"))
    if cfg.user_cap == 0:
        cfg = dataclasses.replace(cfg, user_cap=None)
    if cfg.top_k == 0:
        cfg = dataclasses.replace(cfg, top_k=None)
    return cfg
