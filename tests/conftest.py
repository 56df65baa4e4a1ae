"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The repository is <root>/main; the real data sets live in <root>/shared/data.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """The suite's temporary files (pytest's ``tmp_path`` folders, and what the processes
    it launches write to the temp folder, e.g. torchrun's ``torchelastic_*`` logs) go to
    one private folder, removed when the run ends: a run leaves nothing in the temp
    folder. (What audiograph itself leaves there is tested without this, in a subprocess
    with its own ``TMPDIR``: ``tests/hgnn/test_no_temp_files.py``.)"""
    if config.option.basetemp is not None or hasattr(config, "workerinput"):
        return
    private = Path(tempfile.mkdtemp(prefix="audiograph-tests-"))
    (private / "tmp").mkdir()
    config.option.basetemp = str(private / "pytest")
    config._audiograph_private = (private, os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"] = tempfile.tempdir = str(private / "tmp")


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = getattr(config, "_audiograph_private", None)
    if saved is None:
        return
    private, env, tempdir = saved
    if env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = env
    tempfile.tempdir = tempdir
    shutil.rmtree(private, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``device`` runs on the CPU and on CUDA (the CUDA half marked
    ``cuda`` and skipped without a GPU)."""
    if "device" in metafunc.fixturenames:
        import torch

        no_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
        cuda = pytest.param("cuda", marks=[pytest.mark.cuda, no_gpu])
        metafunc.parametrize("device", ["cpu", cuda])


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder of the real data sets (``$AUDIOGRAPH_DATA``, else ``../shared/data`` beside
    the repository); tests that use it are skipped when it is absent."""
    root = Path(os.environ.get("AUDIOGRAPH_DATA") or DEFAULT_DATA)
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set AUDIOGRAPH_DATA to its folder)")
    return root


@pytest.fixture(scope="session")
def random_sids():
    """``write(root, item_ids) -> (emb, sid)``: random 8-d item vectors (seed 0) as the
    embeddings directory ``root/emb``, tokenized into 2 x 4 codes (+ disambiguation) in
    ``root/sid``."""
    import json

    import numpy as np
    import polars as pl

    from audiograph.semantic_ids import semantic_ids

    def write(root: Path, ids: list[str]) -> tuple[Path, Path]:
        emb, n = root / "emb", len(ids)
        emb.mkdir()
        vectors = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
        np.save(emb / "embeddings.npy", vectors)
        pl.DataFrame(
            {"item_id": ids, "item_type": ["music"] * n, "row": np.arange(n)}
        ).write_parquet(emb / "ids.parquet")
        (emb / "manifest.json").write_text(json.dumps({"kind": "embeddings"}))
        semantic_ids(emb, root / "sid", levels=2, codebook_size=4, seed=0)
        return emb, root / "sid"

    return write


@pytest.fixture
def nan_on_second_call(monkeypatch):
    """``patch(module, name)``: ``module.name`` (a loss) returns NaN on its second call
    (the second training step), as a diverging run would."""

    def patch(module: object, name: str) -> None:
        calls, loss = [], getattr(module, name)

        def wrapped(*args: object) -> object:
            calls.append(1)
            return loss(*args) * (float("nan") if len(calls) == 2 else 1.0)

        monkeypatch.setattr(module, name, wrapped)

    return patch
