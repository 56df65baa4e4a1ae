"""Time to quality of ``audiograph train-hgnn`` with its defaults: wall time and best
validation MRR over seeds, on any graph directory.

    python benchmarks/train_defaults.py --graph GRAPH_DIR [--seeds 3] [--set KEY=VALUE ...]
    python benchmarks/train_defaults.py --graph GRAPH_DIR --save NAME  # results/defaults-NAME.json

Each seed is one ``audiograph train-hgnn GRAPH_DIR --out TMP --seed S`` in a fresh process
(the seed also draws the validation split); ``--set`` passes options through. Reported:
per seed the wall time, epochs run, best validation mean MRR and its epoch, then the mean
of each with its 95 % t-interval. ``--save NAME`` writes the JSON that benchmarks/README.md's
table is generated from (``benchmarks/tables.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quality import interval
from saved import run_and_save

from audiograph.core.runs import Run, read_run_config
from audiograph.graphs.store import read_manifest


def train_once(graph: Path, out: Path, seed: int, options: list[str]) -> dict[str, Any]:
    """One default ``train-hgnn`` run in a fresh process: wall seconds and its metrics."""
    cmd = [
        sys.executable,
        "-m",
        "audiograph",
        "train-hgnn",
        str(graph),
        "--out",
        str(out),
        "--seed",
        str(seed),
        *(a for kv in options for a in ("--set", kv)),
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    rows = Run(out, read_run_config(out, "hgnn-run")).metrics()
    best = max(rows, key=lambda r: r["val_mean_mrr"])
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "epochs_run": len(rows),
        "best_epoch": best["epoch"],
        "best_val_mrr": best["val_mean_mrr"],
        "val_mrr_per_epoch": [r["val_mean_mrr"] for r in rows],
    }


def main(argv: list[str]) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", type=Path, required=True, help="graph directory (build-graph)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, one run each")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a train-hgnn option other than its default (repeatable)",
    )
    args = ap.parse_args(argv)
    manifest = read_manifest(args.graph)
    runs = []
    with tempfile.TemporaryDirectory(prefix="ag-defaults-") as tmp:
        for seed in range(args.seeds):
            r = train_once(args.graph, Path(tmp) / f"seed{seed}", seed, args.set)
            runs.append(r)
            print(
                f"[defaults] seed {seed}: best val MRR {r['best_val_mrr']:.4f} (epoch "
                f"{r['best_epoch']}), {r['epochs_run']} epochs, {r['wall_s'] / 60:.1f} min",
                flush=True,
            )
        saved = read_run_config(Path(tmp) / "seed0", "hgnn-run")["train"]
    train = {k: v for k, v in saved.items() if k != "seed"}
    res = {
        "graph": {
            "name": args.graph.name,
            "nodes": manifest["num_nodes"],
            "edges": manifest["num_edges"],
        },
        "options": args.set,
        "train": train,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": runs,
        "best_val_mrr": interval([r["best_val_mrr"] for r in runs]),
        "wall_min": interval([r["wall_s"] / 60 for r in runs]),
    }
    mrr, wall = res["best_val_mrr"], res["wall_min"]
    ci = "" if mrr["ci95"] is None else f" ± {mrr['ci95']:.4f}"
    print(
        f"[defaults] {len(runs)} seeds: best val MRR {mrr['mean']:.4f}{ci}, "
        f"wall {wall['mean']:.1f} min (max {max(r['wall_s'] for r in runs) / 60:.1f})"
    )
    return res


if __name__ == "__main__":
    run_and_save(main, "defaults")
