"""HGNN export speed on a large synthetic graph (the issue's 1M-item target: <= 60 s).

Builds (or reuses, with ``--workdir``: the pipeline runner caches the stages) a synthetic
catalog of ``--items`` items and
``--users`` users, its co-interaction graph (``--encoder none``: featureless nodes, as
text featurization of 1M items is a separate cost), a HGNN run trained for one tiny
epoch (the weights do not change the export's cost), then times ``export_embeddings``
step by step: load + layer-wise inference, write, ANN index.

    python benchmarks/export.py --workdir /tmp/ag-export            # 1M items (~6 min first)
    python benchmarks/export.py --items music=8000,podcast=1800,audiobook=200 --users 10000

Peak RSS is read from ``resource.getrusage`` (the whole process, build steps included
when they ran in the same process; rerun with the workdir to time the export alone).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

from audiograph.graphs.adapters.synthetic import parse_item_counts
from audiograph.graphs.store import graph_info
from audiograph.hgnn.config import PAPER_RECIPE
from audiograph.hgnn.export import export_embeddings
from audiograph.pipeline.runner import read_experiment, run_experiment

DEFAULT_ITEMS = "music=800000,podcast=180000,audiobook=20000"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default=DEFAULT_ITEMS, help="items per type, TYPE=N,...")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=None, help="reuse data/graph/run from here")
    ap.add_argument("--chunk-size", type=int, default=65536)
    ap.add_argument("--index", default="auto", help="auto | exact | ivf")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ag-export-"))
    exp = read_experiment(
        {
            "experiment": {"out": str(work), "seed": 0},
            "prepare": {
                "adapter": "synthetic",
                "users": args.users,
                "items": parse_item_counts(args.items),
            },
            "graph": {"encoder": "none"},
            "hgnn": {
                **PAPER_RECIPE,
                "epochs": 1,
                "balance": 256,
                "max_val_edges": 100,
                "eval_candidates": 20,
            },
        }
    )
    done = run_experiment(exp, quiet=args.json)  # cached in WORKDIR/pipeline.json
    setup = {f"{k}_s": round(v["seconds"], 1) for k, v in done.items() if not v["cached"]}
    work_graph, work_run = Path(done["graph"]["path"]), Path(done["hgnn"]["path"])
    info = graph_info(work_graph)
    t0 = time.perf_counter()
    m = export_embeddings(
        work_run, work / "emb", chunk_size=args.chunk_size, index=args.index, quiet=False
    )
    total = time.perf_counter() - t0
    out = {
        "nodes": sum(info["node_types"].values()),
        "edges": sum(info["edge_types"].values()),
        "export_s": round(total, 1),
        "index": m["ann"]["index"],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "setup": setup,
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "workdir": str(work),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        "| nodes | directed edges | export (load + inference + write + index) | index | peak RSS |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {out['nodes']:,} | {out['edges']:,} | {out['export_s']} s | {out['index']} | "
        f"{out['peak_rss_gb']} GB |"
    )
    if setup:
        print(f"setup (not timed in the export): {setup}")


if __name__ == "__main__":
    main()
