"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The repository is <root>/main; the real data sets live in <root>/shared/data.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder of the real data sets (``$AUDIOGRAPH_DATA``, else ``../shared/data`` beside
    the repository); tests that use it are skipped when it is absent."""
    root = Path(os.environ.get("AUDIOGRAPH_DATA") or DEFAULT_DATA)
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set AUDIOGRAPH_DATA to its folder)")
    return root
