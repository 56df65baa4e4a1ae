"""Fixtures of the pipeline and benchmark-script tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def load_scripts() -> Iterator[Callable[..., list[ModuleType]]]:
    """``load(*names)``: the scripts ``benchmarks/NAME.py`` as modules ``NAME``, in that
    order (benchmarks/ is not a package: a script imports its siblings by name); they
    leave ``sys.modules`` when the test module ends."""
    loaded: list[str] = []

    def load(*names: str) -> list[ModuleType]:
        out = []
        for name in names:
            spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            loaded.append(name)
            spec.loader.exec_module(module)
            out.append(module)
        return out

    try:
        yield load
    finally:
        for name in loaded:
            sys.modules.pop(name, None)
