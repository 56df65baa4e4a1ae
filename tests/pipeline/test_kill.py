"""Kill tests of the three trainers: a run SIGKILLed at a crash point (``AUDIOGRAPH_CRASH_AT``)
and continued with ``--resume`` ends bit-equal to an uninterrupted run: same weights, one
metrics line per epoch with the same values; right after the kill the checkpoint is absent
or complete (never torn), and the resume leaves no temporary leftovers.

Every run is the real CLI in a subprocess. The subprocesses run single-threaded (tiny
models: torch's thread pool only costs time, a lot of it on a busy 2-core machine) and two
at a time: the uninterrupted runs and each case's kill-and-resume are started together
when the first test needs them; each test then checks what its case left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from audiograph.core.atomic import CRASH_ENV
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.contract import read_dataset
from audiograph.semantic_ids import semantic_ids

EPOCHS = 3
CLI = [sys.executable, "-c", "from audiograph.pipeline.cli import main; main()"]
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
TIMING = {"seconds", "edges_per_s", "pairs_per_s", "examples_per_s"}  # differ run to run
TOML = {
    "hgnn": """[hgnn]
max_epoch_edges = 2000
hidden = 8
fanout = [3, 2]
batch_size = 128
prefetch = 0
eval_candidates = 10
max_val_edges = 50
patience = 100
seed = 3
""",
    "twotower": """[twotower]
tower_dims = [32, 16]
cat_dim = 4
batch_size = 128
patience = 100
seed = 5
cache_dir = "{cache}"
""",
    "generative": """[generative]
d_model = 32
d_ff = 64
layers = 1
heads = 2
dropout = 0.1
history = 4
batch_size = 64
warmup_steps = 5
search_per_epoch = 64
rec_per_epoch = 128
val_examples = 0
seed = 2
""",
}
# (trainer, crash point): (epochs the checkpoint holds after the kill, None: no checkpoint;
#  the file or folder whose temporary sibling the kill leaves; what is missing after it)
CASES = {
    ("hgnn", "checkpoint.partial@2"): (1, "checkpoint.pt", None),  # temp file half written
    ("hgnn", "checkpoint.written@2"): (1, "checkpoint.pt", None),  # complete, not renamed
    ("hgnn", "metrics.logged@2"): (1, None, None),  # epoch 1 logged, not checkpointed
    ("hgnn", "weights.partial@1"): (None, "model.safetensors", "model.safetensors"),
    ("twotower", "checkpoint.partial@2"): (1, "checkpoint.pt", None),
    ("generative", "swap@1"): (1, "model", "model"),  # old model/ moved away, new not in
    ("generative", "checkpoint.partial@2"): (1, "checkpoint.pt", None),
}


def cli(*args: object, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV} | THREADS
    if crash is not None:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [*CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Synthetic dataset, its text-free graph, SIDs of random item vectors, and the
    trainers' TOML configs."""
    root = tmp_path_factory.mktemp("kill")
    data = root / "data"
    prepare_synthetic(data, users=200, items={"music": 60, "podcast": 30, "audiobook": 20}, seed=1)
    build_graph(data, root / "graph", GraphConfig(encoder="none", top_k=10), quiet=True)
    ids = read_dataset(data).items.select("item_id", "item_type")
    emb = root / "emb"
    emb.mkdir()
    vectors = np.random.default_rng(0).normal(size=(ids.height, 8)).astype(np.float32)
    np.save(emb / "embeddings.npy", vectors)
    ids.with_columns(row=pl.int_range(ids.height, dtype=pl.Int64)).write_parquet(
        emb / "ids.parquet"
    )
    (emb / "manifest.json").write_text(json.dumps({"kind": "embeddings"}))
    semantic_ids(emb, root / "sid", levels=2, codebook_size=8, seed=0)
    paths = {"data": data, "graph": root / "graph", "sid": root / "sid"}
    for kind, text in TOML.items():
        paths[kind] = root / f"{kind}.toml"
        paths[kind].write_text(text.format(cache=root / "cache"))
    return paths


def train_args(kind: str, inp: dict[str, Path], run: Path, resume: bool) -> list[object]:
    """The CLI arguments of a new run (``--config``) or of its ``--resume``."""
    common = ["--out", run, "--epochs", EPOCHS, "--quiet"]
    common += ["--resume"] if resume else ["--config", inp[kind]]
    if kind == "hgnn":
        return ["train-hgnn", inp["graph"], *common]
    if kind == "twotower":
        return ["train-twotower", inp["data"], "--no-hgnn", *common]
    return ["train-generative", inp["data"], "--sids", inp["sid"], *common]


def checkpoint(run: Path) -> dict | None:
    f = run / "checkpoint.pt"
    return torch.load(f, weights_only=True) if f.exists() else None


def rows(run: Path) -> list[dict]:
    """The metrics lines of ``run`` without the timings."""
    f = run / "metrics.jsonl"
    lines = f.read_text().splitlines() if f.exists() else []
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


def leftovers(run: Path) -> dict[str, int]:
    """Temporary siblings of killed writes inside ``run`` and beside it (name: size)."""
    found = [*run.rglob(".*.tmp-*"), *run.rglob(".*.old-*"), *run.parent.glob(".*.tmp-*")]
    return {str(p.relative_to(run.parent)): p.stat().st_size for p in found}


def uninterrupted(kind: str, inp: dict[str, Path], run: Path) -> Path:
    res = cli(*train_args(kind, inp, run, resume=False))
    assert res.returncode == 0, res.stderr
    return run


def kill_and_resume(kind: str, inp: dict[str, Path], run: Path, crash: str) -> dict[str, Any]:
    """Start ``kind`` with the crash point ``crash``, note what the kill left, resume it."""
    killed = cli(*train_args(kind, inp, run, resume=False), crash=crash)
    seen = {
        "killed": killed,
        "checkpoint": checkpoint(run),  # a torn checkpoint.pt fails to load here
        "leftovers": leftovers(run),
        "rows": rows(run),
        "present": {p.name for p in run.iterdir()} if run.is_dir() else set(),
    }
    seen["resumed"] = cli(*train_args(kind, inp, run, resume=True))
    return seen


@pytest.fixture(scope="module")
def runs(request, inputs, tmp_path_factory):
    """Futures of the uninterrupted runs and of the kill-and-resume cases that the
    selected tests need, run two at a time."""
    wanted = [
        (item.callspec.params["kind"], item.callspec.params["crash"])
        for item in request.session.items
        if item.path == request.path and hasattr(item, "callspec")
    ]
    pool = ThreadPoolExecutor(max_workers=2)
    full: dict[str, Future] = {}
    for kind, _ in wanted:
        if kind not in full:
            run = tmp_path_factory.mktemp(f"full-{kind}") / "run"
            full[kind] = pool.submit(uninterrupted, kind, inputs, run)
    cases = {}
    for kind, crash in wanted:
        run = tmp_path_factory.mktemp(re.sub(r"\W", "-", f"{kind}-{crash}")) / "run"
        cases[kind, crash] = (run, pool.submit(kill_and_resume, kind, inputs, run, crash))
    yield full, cases
    pool.shutdown(cancel_futures=True)


def bits(t: torch.Tensor) -> tuple:
    t = t.detach().contiguous().cpu()
    return t.dtype, tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy().tobytes()


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names of the tensors that are not bit-equal (or not in both)."""
    return sorted(a.keys() ^ b.keys()) + [k for k in a if k in b and bits(a[k]) != bits(b[k])]


def weight_files(kind: str, run: Path) -> list[Path]:
    if kind == "generative":
        return sorted((run / "model").glob("*.safetensors"))
    return [run / "model.safetensors"]


@pytest.mark.parametrize(("kind", "crash"), list(CASES), ids=[f"{k}-{c}" for k, c in CASES])
def test_killed_then_resumed_equals_uninterrupted(runs, kind, crash):
    epochs_on_disk, torn, missing = CASES[kind, crash]
    full_runs, cases = runs
    run, future = cases[kind, crash]
    seen, full = future.result(), full_runs[kind].result()

    # the kill: SIGKILL at the point, an intact earlier state (or none) on disk
    assert seen["killed"].returncode == -signal.SIGKILL, seen["killed"].stderr
    final = checkpoint(full)
    if epochs_on_disk is None:
        assert seen["checkpoint"] is None
    else:
        assert int(seen["checkpoint"]["epoch"]) == epochs_on_disk
        # the kill left an earlier state, which the comparison below tells apart
        assert differing(seen["checkpoint"]["model"], final["model"])
    assert len(seen["rows"]) < EPOCHS
    assert missing is None or missing not in seen["present"]
    if torn is not None:
        sizes = [n for p, n in seen["leftovers"].items() if Path(p).name.startswith(f".{torn}.")]
        assert sizes, seen["leftovers"]
        point = crash.split("@")[0]
        if point.endswith((".partial", ".written")):  # the temp file: half or all written
            ratio = sizes[0] / (full / torn).stat().st_size
            assert 0.4 < ratio < 0.6 if point.endswith(".partial") else ratio > 0.9

    # the resume: the uninterrupted run's metrics and weights, bit for bit, nothing left over
    assert seen["resumed"].returncode == 0, seen["resumed"].stderr
    assert leftovers(run) == {}
    got, want = rows(run), rows(full)
    assert [r["epoch"] for r in got] == list(range(EPOCHS))
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in want]
    assert got == want  # validation metrics and example counts too
    assert differing(checkpoint(run)["model"], final["model"]) == []
    files = weight_files(kind, run)
    assert files and [f.name for f in files] == [f.name for f in weight_files(kind, full)]
    for f in files:
        assert differing(load_file(f), load_file(full / f.relative_to(run))) == [], f.name
