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
from pathlib import Path
from typing import Any

from graphs.build import GraphConfig
from graphs.errors import ContractError


def read_section(path: Path | None, section: str) -> dict[str, Any]:
    """The ``[section]`` table of a TOML file (empty when ``path`` is None)."""
    if path is None:
        return {}
    try:
        doc = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContractError(f"{path}: cannot read config ({exc})") from None
    table = doc.get(section, {})
    if not isinstance(table, dict):
        raise ContractError(f"{path}: [{section}] must be a table")
    return table


def merge(cls: type, file_values: dict[str, Any], overrides: dict[str, Any], source: str) -> Any:
    """Instantiate dataclass ``cls`` from defaults < file values < non-None overrides."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ContractError(
            f"{source}: unknown option '{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    return cls(**values)


def graph_config(path: Path | None = None, **overrides: Any) -> GraphConfig:
    """``GraphConfig`` from a TOML ``[graph]`` table and CLI flags.

    ``user_cap=0`` and ``top_k=0`` mean "no limit"; ``signals`` may be a comma-separated string.
    """
    if isinstance(overrides.get("signals"), str):
        overrides["signals"] = [s.strip() for s in overrides["signals"].split(",") if s.strip()]
    cfg = merge(GraphConfig, read_section(path, "graph"), overrides, str(path or "flags"))
    if cfg.user_cap == 0:
        cfg.user_cap = None
    if cfg.top_k == 0:
        cfg.top_k = None
    return cfg
