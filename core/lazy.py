"""Names a package exports but imports on first use (PEP 562), so that importing a
package (and the command line, which imports every stage's config) stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``: ``names`` maps each exported
    name to the module that defines it; the module is imported when the name is first
    read, and the value is cached in the package."""
    import sys

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    exported = sorted(names)

    def __dir__() -> list[str]:
        return sorted({*exported, *vars(sys.modules[package])})

    return __getattr__, __dir__, exported
