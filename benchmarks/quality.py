"""Recommendation quality of 2T-HGNN vs the baselines on the leak-free protocol, over seeds.

Per seed, one experiment of the pipeline runner (``audiograph run``; see :func:`experiment`),
its outputs under ``--workdir/seed<N>``:

1. ``split`` the dataset (seeded): test held out, train = *fit* + *label* window, the target
   type made sparse where the dataset says so (``--adopters`` / ``--downsample``);
2. build the co-interaction graph on **fit** only, train the HGNN on it, export embeddings
   for the training catalog;
3. train the two-tower on ``train`` (inputs from fit, positives from the label window,
   validation on the target type's labels); the plain 2T baseline (the runner's
   ``baseline`` stage) with the same settings and no HGNN inputs;
4. evaluate popularity, LLM-KNN, HGNN-KNN, LightGCN, 2T and 2T-HGNN on ``test`` (users
   without a vector rank by popularity; warm / cold-for-type / no-history reported apart).

Reported: per model and metric the mean over seeds with a 95 % t-interval, and the paired
per-seed difference 2T-HGNN − 2T (and its ratio) with its interval.

Datasets: ``lastfm-vertical`` (artists whose top tag is ``electronic`` form the type
``vertical``, launched to 30 % of its users), ``lastfm`` (one type), ``douban`` (books at
10 % of their training pairs, no text), ``synthetic``.

    python benchmarks/quality.py --dataset lastfm-vertical --data-root ../shared/data \\
        --seeds 3 --json --save

``--save`` writes ``benchmarks/results/quality-<dataset>.json``; ``benchmarks/tables.py``
renders the tables of benchmarks/README.md from those files. Work files go to
``--workdir`` (default: a temporary folder), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import build_graph
from audiograph.hgnn.config import PAPER_RECIPE
from audiograph.hgnn.export import export_embeddings
from audiograph.pipeline.runner import read_experiment, run_experiment
from audiograph.twotower.config import MODELS
from audiograph.twotower.evaluate import evaluate_run

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS: dict[str, dict[str, Any]] = {
    "lastfm-vertical": {"target": "vertical", "source": "lastfm-hetrec-2k",
                        "vertical": ["electronic"], "adopters": {"vertical": 0.3}},
    "lastfm": {"target": "artist", "source": "lastfm-hetrec-2k"},
    "douban": {"target": "book", "source": "douban-music-book", "downsample": {"book": 0.1},
               "encoder": "none"},
    "synthetic": {"target": "audiobook", "source": None},
}  # fmt: skip
SYNTHETIC_USERS, SYNTHETIC_TASTES = 10000, 4  # ~1,000 audiobook users; taste not in text
KEYS = ("hr@10", "recall@10", "ndcg@10", "mrr", "coverage")
GROUPS = ("warm", "cold", "no_history")
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"[quality] {msg}", file=sys.stderr, flush=True)


def prepare(name: str, data_root: Path, out: Path) -> None:
    """The dataset ``name`` as a contract dataset in ``out`` (once for every seed)."""
    spec = DATASETS[name]
    if spec["source"] is None:
        prepare_synthetic(out, users=SYNTHETIC_USERS, seed=0, tastes=SYNTHETIC_TASTES)
        return
    src = data_root / spec["source"]
    if not src.is_dir():
        sys.exit(f"error: {src}: data set not found (pass --data-root)")
    if name == "douban":
        prepare_douban(src, out)
    else:
        prepare_lastfm(src, out, spec.get("vertical"))


def experiment(args: argparse.Namespace, data: Path, work: Path, seed: int) -> dict[str, Any]:
    """The pipeline-runner experiment of one seed (see the module docstring)."""
    spec = DATASETS[args.dataset]
    thin = {k: spec[k] for k in ("adopters", "downsample") if spec.get(k)}
    return {
        "experiment": {"out": str(work), "seed": seed, "data": str(data)},
        "split": {"test_fraction": 0.2, "label_fraction": args.label_fraction, **thin},
        "graph": {"encoder": spec.get("encoder", "default")},
        "hgnn": {**PAPER_RECIPE, "epochs": args.hgnn_epochs, "hidden": args.hidden,
                 "balance": args.hgnn_balance, "prefetch": 1},
        "export": {},
        "twotower": {"epochs": args.tt_epochs, "batch_size": args.batch_size,
                     "patience": args.patience, "val_type": spec["target"]},
        "baseline": {},  # the plain 2T: the same settings without HGNN inputs
        "evaluate": {"target_type": spec["target"], "models": list(MODELS)},
    }  # fmt: skip


def one_seed(args: argparse.Namespace, data: Path, work: Path, seed: int) -> dict[str, Any]:
    """Split, graph, HGNN, two-tower, baseline and evaluation for one seed (through the
    pipeline runner); the evaluate report."""
    spec, quiet, t0 = DATASETS[args.dataset], args.json, time.perf_counter()
    exp = read_experiment(experiment(args, data, work, seed))
    done = {k: Path(v["path"]) for k, v in run_experiment(exp, quiet=True).items()}
    report = json.loads((done["evaluate"] / "report.json").read_text())
    report["validation"] = {  # what model selection saw (never the test part)
        "hgnn_mean_mrr": max(_metric(done["hgnn"], "val_mean_mrr")),
        "2t-hgnn_recall@10": max(_metric(done["twotower"], "val_recall@10")),
        "2t_recall@10": max(_metric(done["baseline"], "val_recall@10")),
    }
    split = done["split"]
    if args.train_graph:  # the same HGNN weights re-exported on a graph of all of train
        build_graph(split / "train", work / "graph-train", exp.settings["graph"], quiet=True)
        export_embeddings(done["hgnn"], work / "emb-train", catalog=split / "train",
                          graph=work / "graph-train", quiet=True)  # fmt: skip
        again = evaluate_run(done["twotower"], split / "test", target_type=spec["target"],
                             models=("hgnn", "2t-hgnn"), emb_dir=work / "emb-train")  # fmt: skip
        for m, r in again["results"].items():
            report["results"][f"{m}, train graph"] = r
    report["config"] = {"hgnn": asdict(exp.settings["hgnn"]),
                        "twotower": asdict(exp.settings["twotower"])}  # fmt: skip
    report["split"] = json.loads((split / "manifest.json").read_text())
    report["seconds_total"] = round(time.perf_counter() - t0, 1)
    _log(quiet, f"seed {seed}: done in {report['seconds_total']:.0f}s")
    return report


def _metric(run_dir: Path, key: str) -> list[float]:
    """``key`` of every epoch line of a run's ``metrics.jsonl``."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)[key] for x in lines if x]


def interval(values: list[float]) -> dict[str, float | None]:
    """Mean and half-width of the 95 % t-interval (None with one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci95": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "ci95": T95.get(n - 1, 1.96) * sd / math.sqrt(n)}


def aggregate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per model: mean ± ci95 of every metric, overall and per user group."""
    out: dict[str, Any] = {}
    for model in reports[0]["results"]:
        rs = [r["results"][model] for r in reports]
        row: dict[str, Any] = {k: interval([r[k] for r in rs]) for k in KEYS}
        row["users"] = rs[0]["users"]
        row["fallback_users"] = rs[0].get("fallback_users")
        for g in GROUPS:
            vals = [r[g]["hr@10"] for r in rs if r.get(g) and r[g]["hr@10"] is not None]
            row[g] = {"hr@10": interval(vals) if vals else None,
                      "users": [r[g]["users"] for r in rs if r.get(g)]}  # fmt: skip
        out[model] = row
    return out


def difference(reports: list[dict[str, Any]], a: str = "2t-hgnn", b: str = "2t") -> dict:
    """Paired per-seed HR@10 difference and ratio ``a`` vs ``b``, overall and cold."""
    out = {}
    for group in ("all", "cold", "no_history"):
        pa, pb = [], []
        for r in reports:
            ra, rb = r["results"][a], r["results"][b]
            if group != "all":
                ra, rb = ra.get(group) or {}, rb.get(group) or {}
            if ra.get("hr@10") is not None and rb.get("hr@10") is not None:
                pa.append(ra["hr@10"])
                pb.append(rb["hr@10"])
        if pa:
            ratio = None if min(pb) <= 0 else interval([x / y for x, y in zip(pa, pb, strict=True)])
            out[group] = {"diff": interval([x - y for x, y in zip(pa, pb, strict=True)]),
                          "ratio": ratio}  # fmt: skip
    return out


def save_variant(dataset: str, label: str, out: dict[str, Any]) -> None:
    """Add (or replace) ``label`` in ``results/ablation-DATASET.json`` (the ablation table
    of benchmarks/README.md is generated from it)."""
    f = RESULTS / f"ablation-{dataset}.json"
    doc = json.loads(f.read_text()) if f.exists() else {"dataset": dataset, "variants": {}}
    doc["variants"][label] = {
        k: out[k]
        for k in ("results", "validation", "2t-hgnn_vs_2t", "config", "split", "seeds", "seconds")
    }
    RESULTS.mkdir(exist_ok=True)
    f.write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--data-root", default="../shared/data", help="folder of the real data")
    ap.add_argument("--workdir", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    ap.add_argument("--label-fraction", type=float, default=0.2)
    ap.add_argument("--hgnn-epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--hgnn-balance", type=int, default=10000, help="edges per link type")
    ap.add_argument("--tt-epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument(
        "--train-graph",
        action="store_true",
        help="also score hgnn / 2t-hgnn with the HGNN re-exported on all of train",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--save", action="store_true", help=f"write {RESULTS}/quality-NAME.json")
    ap.add_argument(
        "--variant",
        default=None,
        help=f"record the run as this ablation variant in {RESULTS}/ablation-NAME.json",
    )
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"ag-quality-{args.dataset}-"))
    t0 = time.perf_counter()
    prepare(args.dataset, Path(args.data_root), work / "data")
    reports = [one_seed(args, work / "data", work / f"seed{s}", s) for s in range(args.seeds)]
    out = {
        "dataset": args.dataset,
        "target_type": DATASETS[args.dataset]["target"],
        "seeds": list(range(args.seeds)),
        "results": aggregate(reports),
        "validation": {
            k: interval([r["validation"][k] for r in reports]) for k in reports[0]["validation"]
        },  # fmt: skip
        "2t-hgnn_vs_2t": difference(reports),
        **(
            {"2t-hgnn, train graph_vs_2t": difference(reports, "2t-hgnn, train graph")}
            if args.train_graph
            else {}
        ),
        "per_seed": [
            {m: {k: r["results"][m][k] for k in KEYS} for m in r["results"]} for r in reports
        ],  # fmt: skip
        "split": {
            k: reports[0]["split"][k]
            for k in ("method", "test_fraction", "label_fraction", "downsample", "adopters")
        },  # fmt: skip
        "config": reports[0]["config"],
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
    }
    if args.variant:
        save_variant(args.dataset, args.variant, out)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"quality-{args.dataset}.json").write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        from tables import quality_table  # the sibling script (benchmarks/ is not a package)

        print(quality_table(out))


if __name__ == "__main__":
    main()
