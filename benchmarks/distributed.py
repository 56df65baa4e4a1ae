"""Distributed-training throughput: 1 process vs ``torchrun`` with N gloo processes.

Trains ``train-hgnn`` (Last.fm artist graph, no text features, so every node has a learned
embedding and the sparse-gradient path runs; one epoch of 30,000 supervision edges) and
``train-twotower`` (plain two-tower on the Last.fm split, five epochs), after one warm-up
run each, once as one process (intra-op threads = cores) and once per ``--procs`` entry
as ``torchrun --standalone --nproc-per-node N … --distributed`` (torchrun gives each rank
``OMP_NUM_THREADS=1``). Throughput is what the run logs in ``metrics.jsonl``: supervision
edges (pairs for the two-tower) of all ranks over rank 0's training seconds, evaluation
excluded; the wall time covers the whole command (start-up, rendezvous, validation,
writing). ``--save NAME`` writes ``results/distributed-NAME.json``; benchmarks/README.md's
table is generated from it by ``benchmarks/tables.py``.

    python benchmarks/distributed.py --save lastfm

On one 2-core machine N processes share the same two cores, so they are not expected to
be faster: the point is that the distributed path runs and what its overhead is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.build import build_graph
from audiograph.graphs.config import GraphConfig, SplitConfig
from audiograph.graphs.split import split_dataset

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "audiograph"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


def timed(cmd: list[str], run: Path) -> dict:
    """Run ``cmd`` (a training command writing ``run``); its wall time and last metrics."""
    shutil.rmtree(run, ignore_errors=True)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = sum(e["seconds"] for e in epochs)
    return {"wall_s": round(wall, 1), "train_s": round(train, 1), "epochs": epochs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--procs", default="2", help="comma-separated torchrun world sizes")
    ap.add_argument("--balance", type=int, default=30_000, help="HGNN supervision edges")
    ap.add_argument("--save", default=None, help="write results/distributed-NAME.json")
    args = ap.parse_args()
    src = args.data_root / "lastfm-hetrec-2k"
    if not src.exists():
        sys.exit(f"skipped: {src} not found (see the data README)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="audiograph-dist-"))
    data, graph, split = work / "data", work / "graph", work / "split"
    if not data.exists():
        prepare_lastfm(src, data)
    if not graph.exists():
        build_graph(data, graph, GraphConfig(encoder="none"), quiet=True)
    if not split.exists():
        split_dataset(data, split, SplitConfig(), seed=0)
    hgnn = [
        "train-hgnn",
        str(graph),
        "--epochs",
        "1",
        "--balance",
        str(args.balance),
        "--hidden",
        "64",
        "--quiet",
    ]
    two = [
        "train-twotower",
        str(split / "train"),
        "--no-hgnn",
        "--epochs",
        "5",
        "--patience",
        "5",
        "--quiet",
    ]
    models = {"hgnn": (hgnn, "edges_per_s"), "twotower": (two, "pairs_per_s")}
    rows: dict[str, dict] = {}
    for name, (cmd, key) in models.items():
        timed(CLI + cmd + ["--out", str(work / "warm-up")], work / "warm-up")  # caches, imports
        for procs in [1, *map(int, args.procs.split(","))]:
            run = work / f"{name}-{procs}"
            full = (
                CLI + cmd
                if procs == 1
                else (
                    TORCHRUN
                    + [f"--nproc-per-node={procs}", "-m", "audiograph"]
                    + cmd
                    + ["--distributed"]
                )
            )
            r = timed(full + ["--out", str(run)], run)
            per_s = sum(e[key] * e["seconds"] for e in r["epochs"]) / r["train_s"]
            rows[f"{name}-{procs}"] = {
                "model": name,
                "processes": procs,
                "wall_s": r["wall_s"],
                "train_s": r["train_s"],
                "epochs": len(r["epochs"]),
                "per_s": round(per_s),
                "unit": key,
            }
            print(
                f"{name:9s} {procs} process(es): {per_s:10,.0f} {key}, training "
                f"{r['train_s']:.1f} s, wall {r['wall_s']:.1f} s",
                flush=True,
            )
    command = f"--procs {args.procs} --balance {args.balance} --save {args.save}"
    doc = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": rows,
        "graph": "Last.fm artists (build-graph defaults, no text)",
        "command": command,
    }
    if args.save:
        out = HERE / "results" / f"distributed-{args.save}.json"
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"saved {out}")


if __name__ == "__main__":
    main()
