"""Config files: the project's one TOML loader, and the settings a resumed run saved.

A config file has one table per stage, named like the stage's config fields::

    [graph]
    min_users = 2
    user_cap = 200
    top_k = 30
    signals = ["stream", "follow"]

The configs themselves, and the helpers that fill them, live in
:mod:`audiograph.core.config`; the command-line options built from them in
:mod:`audiograph.pipeline.options`.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from audiograph.core.errors import ContractError


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict (the project's one TOML loader; one-line errors)."""
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ContractError(f"{path}: cannot read config ({exc})") from None


def read_section(path: Path | None, section: str, known: set[str] | None = None) -> dict[str, Any]:
    """The ``[section]`` table of a TOML file (empty when ``path`` is None). With ``known``,
    a table not named there (a misspelt ``[hgn]``) or a setting outside any table is a
    one-line error, not silently ignored."""
    if path is None:
        return {}
    doc = read_toml(path)
    for name, value in doc.items() if known is not None else ():
        if not isinstance(value, dict):
            raise ContractError(
                f"{path}: setting '{name}' is outside any table (put it under [{section}])"
            )
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean [{close[0]}]? " if close else ""
            raise ContractError(
                f"{path}: unknown table [{name}] ({hint}known: {', '.join(sorted(known))})"
            )
    table = doc.get(section, {})
    if not isinstance(table, dict):
        raise ContractError(f"{path}: [{section}] must be a table")
    return dict(table)


def resume_base(run_dir: Path, kind: str) -> dict[str, Any]:
    """The saved settings of the ``kind`` run at ``run_dir`` (the base of ``--resume``)."""
    from audiograph.core.runs import read_run_config

    return dict(read_run_config(run_dir, kind).get("train", {}))
