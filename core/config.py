"""Stage configs: frozen dataclasses that validate themselves, and the generic helpers that
fill them from TOML tables, command-line text and keyword arguments.

Every stage has one config class (``GraphConfig``, ``SplitConfig``, ``HGNNConfig``, ...).
Its docstring's ``Attributes:`` section documents each field; the command line's options
and their help are generated from the fields and those docs (:mod:`audiograph.pipeline.options`).
A config's ``validate()`` raises the project's one-line :class:`ContractError` and runs on
construction, so an invalid config never exists.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from audiograph.core.errors import ContractError

C = TypeVar("C")

DEFAULT_CACHE = Path(os.environ.get("AUDIOGRAPH_CACHE", Path.home() / ".cache" / "audiograph"))
"""The text-vector cache folder of every stage that encodes text (``$AUDIOGRAPH_CACHE``)."""


class Validated:
    """Mixin of the stage configs: ``__post_init__`` refuses a non-finite float (inf, nan)
    in any field, then calls ``validate()``."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not _finite(value):
                raise ContractError(
                    f"--{f.name.replace('_', '-')} must be a finite number, got {value!r}"
                )
        self.validate()

    def validate(self) -> None:  # pragma: no cover - every config overrides it
        """Raise :class:`ContractError` on an invalid setting."""


def _finite(value: Any) -> bool:
    """No inf or nan in ``value`` (a number, or a list or table of them)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


def field_docs(cls: type) -> dict[str, str]:
    """``{field: doc}`` from the ``Attributes:`` sections of the docstrings of ``cls`` and
    its bases (a field's doc may continue on more-indented lines; a subclass's doc of a
    field wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_attribute_docs(inspect.cleandoc(klass.__dict__.get("__doc__") or "")))
    return docs


def _attribute_docs(doc: str) -> dict[str, str]:
    docs: dict[str, str] = {}
    section, current = False, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            section = True
            continue
        if not section:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        m = re.match(r"^ {4}(\w+):\s*(.*)$", line)
        if m:
            current = m.group(1)
            docs[current] = m.group(2).strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def fits(value: Any, hint: Any) -> bool:
    """Whether a TOML / flag value has the type ``hint`` (ints count as floats; a bool is
    never a number)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str | os.PathLike)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        inner = args[0] if args else Any
        return inner is Any or all(fits(v, inner) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(fits(k, args[0]) and fits(v, args[1]) for k, v in value.items())
    if origin is None and isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe(hint: Any) -> str:
    """``int | None`` → ``"int or none"`` (for error messages)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {describe(args[0])}" if args else "a list"
    if origin is dict:
        return f"a table (KEY=VALUE,...) of {describe(args[1])} values" if args else "a table"
    return "none" if hint is type(None) else getattr(hint, "__name__", str(hint))


def parse_text(text: str, hint: Any) -> Any:
    """A command-line string as a value of type ``hint``: ``none`` → None; lists are
    comma-separated (``15,10``); tables are ``KEY=VALUE,...``; scalars read as TOML values
    (``5000``, ``1.5``, ``true``) and otherwise stay text."""
    text = text.strip()
    if text.lower() == "none" and fits(None, hint):
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return parse_text(text, rest[0])
        value = _scalar(text)  # e.g. ``str | int | float``: 5000 → 5000, min → "min"
        return value if fits(value, hint) or str not in rest else text
    if origin in (list, tuple):
        inner = args[0] if args else Any
        return [parse_text(part, inner) for part in text.split(",") if part.strip()]
    if origin is dict:
        inner = args[1] if len(args) == 2 else Any
        table = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                raise ContractError(f"expected KEY=VALUE,..., got {text!r}")
            table[key.strip()] = parse_text(value, inner)
        return table
    if hint is str:
        return text
    return _scalar(text)


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(pairs: list[str], source: str = "--set") -> dict[str, str]:
    """``["a=1", "b.c=x"]`` → ``{"a": "1", "b.c": "x"}`` (values still text)."""
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ContractError(f"{source}: expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def check_values(hints: dict[str, Any], values: dict[str, Any], where: str) -> None:
    """One-line error for a name not in ``hints`` (name → type) or a value of the wrong
    type."""
    for k, v in values.items():
        if k not in hints:
            raise ContractError(
                f"{where}: unknown option '{k}' (known: {', '.join(sorted(hints))})"
            )
        if not fits(v, hints[k]):
            raise ContractError(f"{where}: option '{k}' must be {describe(hints[k])}, got {v!r}")


def _check(cls: type, values: dict[str, Any], where: str) -> None:
    """One-line error for a name ``cls`` lacks or a value of the wrong type."""
    hints = typing.get_type_hints(cls)
    check_values({f.name: hints[f.name] for f in dataclasses.fields(cls)}, values, where)


def merge(
    cls: type[C],
    file_values: dict[str, Any],
    overrides: dict[str, Any],
    source: str,
    base: dict[str, Any] | None = None,
    *,
    table: bool = False,
) -> C:
    """Instantiate config ``cls`` from ``base`` (defaults when None; a resumed run's saved
    settings) < file values < non-None overrides. Unknown names, values of the wrong type and
    invalid settings (the dataclass validates itself) are one-line errors; with ``table``
    (the values are all a file's table: no overrides, no base) an invalid setting's error
    names ``source`` and the setting by its key (``epochs``, not ``--epochs``)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(file_values) | set(overrides)) - names)
    if unknown:
        raise ContractError(
            f"{source}: unknown option '{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    _check(cls, file_values, source)
    _check(cls, given, "flags")
    values = {**(base or {}), **file_values, **given}
    try:
        return cls(**{k: v for k, v in values.items() if k in names})
    except TypeError as exc:
        raise ContractError(f"{source}: {exc}") from None
    except ContractError as exc:
        if not table:
            raise
        raise ContractError(f"{source}: {_as_keys(str(exc), names)}") from None


def _as_keys(message: str, names: set[str]) -> str:
    """``message`` with the flags of ``names`` (``--max-epochs``) written as the keys a
    table sets (``max_epochs``)."""

    def key(m: re.Match[str]) -> str:
        name = m.group(1).replace("-", "_")
        return name if name in names else m.group(0)

    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)", key, message)


def configure(cls: type[C], cfg: C | None, options: dict[str, Any], where: str) -> C:
    """``cfg`` (or the defaults of ``cls``) with keyword ``options`` applied, None included:
    the Python API's ``fn(..., cfg=None, **options)``. Unknown or mistyped options are
    one-line errors."""
    if cfg is not None and not isinstance(cfg, cls):
        raise ContractError(f"{where}: cfg must be a {cls.__name__}, got {type(cfg).__name__}")
    if not options:
        return cfg if cfg is not None else cls()
    _check(cls, options, where)
    options = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in options.items()}
    return dataclasses.replace(cfg if cfg is not None else cls(), **options)
