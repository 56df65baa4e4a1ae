"""HGNN export speed on a large synthetic graph (the issue's 1M-item target: <= 60 s).

Builds (or reuses, with ``--workdir``) a synthetic catalog of ``--items`` items and
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

from audiograph.graphs.adapters.synthetic import parse_item_counts, prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import graph_info
from audiograph.hgnn.export import export_embeddings
from audiograph.hgnn.train import HGNNConfig, train_hgnn

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
    setup = {}
    t0 = time.perf_counter()
    if not (work / "data" / "manifest.json").exists():
        items = parse_item_counts(args.items)
        prepare_synthetic(work / "data", users=args.users, items=items, seed=0)
        setup["prepare_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    if not (work / "graph" / "manifest.json").exists():
        build_graph(work / "data", work / "graph", GraphConfig(encoder="none"), quiet=True)
        setup["build_graph_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    if not (work / "run" / "model.safetensors").exists():
        cfg = HGNNConfig(epochs=1, balance=256, max_val_edges=100, eval_candidates=20)
        train_hgnn(work / "graph", work / "run", cfg, quiet=True)
        setup["train_s"] = round(time.perf_counter() - t0, 1)
    info = graph_info(work / "graph")
    t0 = time.perf_counter()
    m = export_embeddings(work / "run", work / "emb", chunk_size=args.chunk_size,
                          index=args.index, quiet=False)  # fmt: skip
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
    print(f"| {out['nodes']:,} | {out['edges']:,} | {out['export_s']} s | {out['index']} | "
          f"{out['peak_rss_gb']} GB |")  # fmt: skip
    if setup:
        print(f"setup (not timed in the export): {setup}")


if __name__ == "__main__":
    main()
