"""CI (``.ci/run``) runs the README's test command and, after setup, ruff's lint and format
checks, with the ruff that the ``test`` extra (installed by ``setup.sh``) brings."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command_and_ruff_after_setup():
    steps = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert steps[0] == "./setup.sh" and steps[-1] == ".venv/bin/python -m pytest -q"
    assert "./setup.sh && .venv/bin/python -m pytest -q" in (ROOT / "README.md").read_text()
    assert ".venv/bin/ruff check ." in steps[1:] and ".venv/bin/ruff format --check ." in steps[1:]
    assert '".[test' in (ROOT / "setup.sh").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("ruff") for r in extras["optional-dependencies"]["test"])
