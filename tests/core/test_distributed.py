"""``train-hgnn`` / ``train-twotower --distributed`` under torchrun (2 gloo processes on
this machine): 2 ranks take the same optimizer steps as one process accumulating 2
micro-batches per step, and a distributed run resumes to the weights of an uninterrupted
one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from audiograph.core.distributed import World, shard
from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import build_graph
from audiograph.graphs.config import GraphConfig
from audiograph.graphs.split import split_dataset
from audiograph.hgnn.config import HGNNConfig
from audiograph.hgnn.train import train_hgnn

# fp32 and one thread per process: bit-exact equality is a property of the float32 step
# (bf16 matrix products run-to-run differed on one CI CPU; the thread count changes the
# order of float sums, which Adam's normalised steps amplify on near-zero gradients)
TINY = [
    "--max-epoch-edges",
    "2000",
    "--hidden",
    "16",
    "--fanout",
    "3,2",
    "--batch-size",
    "32",
    "--prefetch",
    "0",
    "--precision",
    "fp32",
    "--eval-candidates",
    "10",
    "--max-val-edges",
    "50",
    "--quiet",
]


PINNED = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "AUDIOGRAPH_SAMPLER_THREADS": "1",
}


def cli(*args: str, ranks: int = 1, env: dict[str, str] | None = None) -> None:
    launch = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={ranks}",
            "-m",
            "audiograph",
        ]
        if ranks > 1
        else [sys.executable, "-m", "audiograph"]
    )
    env = {**os.environ, **PINNED, **(env or {})}
    res = subprocess.run([*launch, *args], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]


def best(run) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def weights(run) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    return {k: v.to_dense() for k, v in state.items()}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """A small graph with text features (so the export test covers the text projection)."""
    root = tmp_path_factory.mktemp("dist")
    prepare_synthetic(
        root / "data", users=300, items={"music": 200, "podcast": 100, "audiobook": 40}
    )
    build_graph(
        root / "data", root / "graph", GraphConfig(cache_dir=str(root / "cache")), quiet=True
    )
    split_dataset(root / "data", root / "split")
    return root / "graph"


@pytest.fixture(scope="module")
def runs(graph):
    """One epoch on 2 ranks, and on one process accumulating 2 micro-batches per step."""
    root = graph.parent
    cli(
        "train-hgnn",
        str(graph),
        "--out",
        str(root / "ddp"),
        "--epochs",
        "1",
        *TINY,
        "--distributed",
        ranks=2,
    )
    cli(
        "train-hgnn",
        str(graph),
        "--out",
        str(root / "one"),
        "--epochs",
        "1",
        *TINY,
        "--accumulate",
        "2",
    )
    return {"ddp": root / "ddp", "one": root / "one"}


def test_shards_are_disjoint_equal_and_cover_whole_steps():
    steps = [shard(11, World(rank, 2), accumulate=2) for rank in (0, 1)]
    assert steps == [[[0, 1], [4, 5]], [[2, 3], [6, 7]]]  # 11 mod 4 = 3 batches dropped
    assert shard(5, World(), 1) == [[0], [1], [2], [3], [4]]  # one process: every batch


def test_two_ranks_equal_one_process_accumulating_two(runs):
    """Every step: rank r's micro-batch 2s+r; its gradients averaged over both ranks. One
    process with accumulate=2 averages the same two micro-batches' gradients. The sum
    order differs ((g0+g1)/2 vs g0/2+g1/2), so equality is up to float rounding; measured
    here it is exact, and the bound is 1e-6 of the largest weight."""
    a, b = weights(runs["ddp"]), weights(runs["one"])
    scale = max(float(v.abs().max()) for v in b.values())
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-6 * scale), k


def test_distributed_resume_equals_uninterrupted(graph, runs, tmp_path):
    cli(
        "train-hgnn",
        str(graph),
        "--out",
        str(tmp_path / "full"),
        "--epochs",
        "2",
        *TINY,
        "--distributed",
        ranks=2,
    )
    shutil.copytree(runs["ddp"], tmp_path / "cut")  # the 1-epoch distributed run
    cli(
        "train-hgnn",
        str(graph),
        "--out",
        str(tmp_path / "cut"),
        "--resume",
        "--epochs",
        "2",
        "--quiet",
        "--distributed",
        ranks=2,
    )
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 2


def test_distributed_needs_torchrun(graph, tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ContractError, match="launch with torchrun"):
        train_hgnn(graph, tmp_path / "x", HGNNConfig(epochs=1), quiet=True, distributed=True)
    assert not (tmp_path / "x").exists()


def test_two_tower_two_ranks_equal_one_process_accumulating_two(graph, tmp_path):
    """The same for the two-tower (in-batch negatives are each rank's own batch; the extra
    negatives are drawn for every batch on every rank, so the streams agree)."""
    train = str(graph.parent / "split" / "train")
    opts = [
        "--epochs",
        "2",
        "--tower-dims",
        "16",
        "--batch-size",
        "64",
        "--no-hgnn",
        "--extra-negatives",
        "8",
        "--quiet",
    ]
    cli("train-twotower", train, "--out", str(tmp_path / "ddp"), *opts, "--distributed", ranks=2)
    cli("train-twotower", train, "--out", str(tmp_path / "one"), *opts, "--accumulate", "2")
    a, b = best(tmp_path / "ddp"), best(tmp_path / "one")
    scale = max(float(v.abs().max()) for v in b.values())
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6 * scale) for k in a)
    rows = [(tmp_path / r / "metrics.jsonl").read_text().splitlines() for r in ("ddp", "one")]
    assert len(rows[0]) == len(rows[1]) == 2


def test_sharded_export_writes_the_single_process_bytes(graph, runs, tmp_path):
    """Text features on, chunks of 50 rows dealt to 2 ranks: the same embeddings.npy and
    embeddings.parquet bytes as one process with the same intra-op threads (torchrun gives
    each worker OMP_NUM_THREADS=1; one process with 2 threads already differs from itself
    with 1 in the last bits of the text projection)."""
    common = [
        "--chunk-size",
        "50",
        "--cache-dir",
        str(graph.parent / "cache"),
        "--quiet",
        "--catalog",
        str(graph.parent / "data"),
    ]
    cli("export", str(runs["one"]), "--out", str(tmp_path / "one"), *common)  # PINNED: 1 thread
    cli(
        "export",
        str(runs["one"]),
        "--out",
        str(tmp_path / "ddp"),
        *common,
        "--distributed",
        ranks=2,
    )
    for name in ("embeddings.npy", "embeddings.parquet", "ids.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "ddp" / name).read_bytes()
