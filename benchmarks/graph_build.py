"""Graph-build benchmark: synthetic 1 M users / ~12 M interactions, polars and Spark.

Prints wall time and peak RSS of ``build-graph`` without text features for each engine
(each build runs in a fresh child process so the peak RSS is the build's own; for Spark
also the peak RSS of its JVM, started by that child), checks that the engines' graphs are
identical, then text featurization throughput measured separately on a sample of the
catalog's items. ``--save NAME`` writes ``results/graph_build-NAME.json`` (the table in
benchmarks/README.md is generated from it by ``benchmarks/tables.py``).

    python benchmarks/graph_build.py                                # full size, polars
    python benchmarks/graph_build.py --users 100000 --engine polars,spark --save 100k
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_BUILD = """
import json, resource, sys, time
from audiograph.graphs.build import GraphConfig, build_graph
t = time.perf_counter()
cfg = GraphConfig(encoder="none", user_cap=int(sys.argv[3]), top_k=int(sys.argv[4]),
                  engine=sys.argv[5])
m = build_graph(sys.argv[1], sys.argv[2], cfg, quiet=True)
seconds, jvm = time.perf_counter() - t, None
if cfg.engine == "spark":  # the JVM's own peak (VmHWM), before it exits with this process
    from pyspark import SparkContext
    status = open(f"/proc/{SparkContext._gateway.proc.pid}/status").read()
    jvm = int(status.split("VmHWM:")[1].split()[0]) / 2**20
print(json.dumps({"seconds": seconds, "edges": m["num_edges"], "jvm_rss_gb": jvm,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""

CHILD_TEXT = """
import json, sys, time
import polars as pl
from audiograph.core.text_encoder import TextEncoder, featurize_texts, item_texts
items = pl.read_parquet(sys.argv[1] + "/items.parquet").sample(int(sys.argv[2]), seed=0)
enc = TextEncoder()
t = time.perf_counter()
featurize_texts(item_texts(items), enc, cache_dir=None, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "items": items.height}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", default="music=200000,podcast=50000,audiobook=5000")
    ap.add_argument("--interactions-per-user", type=float, default=10.0)
    ap.add_argument("--user-cap", type=int, default=100)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--text-sample", type=int, default=2000)
    ap.add_argument("--engine", default="polars", help="polars, spark or polars,spark")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--save", default=None, help="write results/graph_build-NAME.json")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from audiograph.graphs.adapters.synthetic import parse_item_counts, prepare_synthetic

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ag-bench-"))
    data = work / "data"
    t = time.perf_counter()
    m = prepare_synthetic(
        data,
        users=args.users,
        items=parse_item_counts(args.items),
        seed=0,
        interactions_per_user=args.interactions_per_user,
    )
    gen_s = time.perf_counter() - t
    engines = [e.strip() for e in args.engine.split(",")]
    builds = {
        e: child(
            CHILD_BUILD, str(data), str(work / f"graph-{e}"), str(args.user_cap), str(args.top_k), e
        )
        for e in engines
    }
    text = child(CHILD_TEXT, str(data), str(args.text_sample))
    row = {
        "users": args.users,
        "items": m["counts"]["items"],
        "interactions": m["counts"]["interactions"],
        "generate_s": round(gen_s, 1),
        **{f"{e}_build_s": round(b["seconds"], 1) for e, b in builds.items()},
        **{f"{e}_peak_rss_gb": round(b["rss_gb"], 2) for e, b in builds.items()},
        **{
            f"{e}_jvm_peak_rss_gb": round(b["jvm_rss_gb"], 2)
            for e, b in builds.items()
            if b["jvm_rss_gb"] is not None
        },
        "directed_edges": builds[engines[0]]["edges"],
        "text_items_per_s": round(text["items"] / text["seconds"], 1),
    }
    if len(engines) > 1:
        row["identical_graphs"] = all(
            (work / f"graph-{engines[0]}" / "graph.safetensors").read_bytes()
            == (work / f"graph-{e}" / "graph.safetensors").read_bytes()
            for e in engines[1:]
        )
    if args.save:
        out = Path(__file__).parent / "results" / f"graph_build-{args.save}.json"
        out.write_text(json.dumps({"command": " ".join(sys.argv[1:]), **row}, indent=2) + "\n")
    if args.json:
        print(json.dumps(row))
        return
    print(f"\n{'metric':<28}{'value':>16}")
    for k, v in row.items():
        print(f"{k:<28}{v:>16,}" if isinstance(v, int) else f"{k:<28}{v:>16}")


if __name__ == "__main__":
    main()
