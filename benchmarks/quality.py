"""Recommendation quality of 2T-HGNN vs the baselines (the 2T-HGNN paper's offline table).

One dataset per run, all of it through the public stage functions (the same steps as
``audiograph split / build-graph / train-hgnn / export / train-twotower / evaluate``):

1. prepare the dataset, split it (temporal when every row has a ts, else 20 % per-user
   random hold-out, seeded) — Douban additionally keeps only 10 % of the book training
   pairs, so books are the sparse new type;
2. build the co-interaction graph from the **training** part only, train the HGNN on it,
   export embeddings for the training catalog (no leakage from the test part);
3. train the two-tower model on the training part (model choices use its own validation
   users, never the test split);
4. evaluate popularity, LLM-KNN, HGNN-KNN, LightGCN, plain 2T and 2T-HGNN on the test
   part: HR@10, Recall@10, NDCG@10, MRR, coverage for the target type.

Datasets: ``douban`` (target book), ``lastfm`` (target artist; ``2t-hgnn-notag`` is the
two-tower trained without the ``tag`` weak signal), ``synthetic`` (default synthetic
catalog, target audiobook).

    python benchmarks/quality.py --dataset douban --data-root ../shared/data
    python benchmarks/quality.py --dataset lastfm --data-root ../shared/data --json

Work files go to ``--workdir`` (default: a temporary folder), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from graphs.adapters.douban import prepare_douban  # noqa: E402
from graphs.adapters.lastfm import prepare_lastfm  # noqa: E402
from graphs.adapters.synthetic import prepare_synthetic  # noqa: E402
from graphs.build import GraphConfig, build_graph  # noqa: E402
from graphs.contract import read_dataset, write_dataset  # noqa: E402
from graphs.split import split_dataset  # noqa: E402
from hgnn.export import export_embeddings  # noqa: E402
from hgnn.train import HGNNConfig, train_hgnn  # noqa: E402
from twotower.evaluate import MODELS, evaluate_run, results_table  # noqa: E402
from twotower.export import user_item_vectors  # noqa: E402
from twotower.metrics import evaluate_vectors  # noqa: E402
from twotower.train import TwoTowerConfig, train_twotower  # noqa: E402

DATASETS = {
    # name: (target type, source folder, downsample of training pairs)
    "douban": ("book", "douban-music-book", {"book": 0.1}),
    "lastfm": ("artist", "lastfm-hetrec-2k", None),
    "synthetic": ("audiobook", None, None),
}
KEYS = ("hr@10", "recall@10", "ndcg@10", "mrr", "coverage")


def _step(name: str, t0: float, quiet: bool) -> float:
    now = time.perf_counter()
    if not quiet:
        print(f"[quality] {name}: {now - t0:.1f}s", file=sys.stderr)
    return now


def run(args: argparse.Namespace) -> dict[str, Any]:
    target, folder, thin = DATASETS[args.dataset]
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"ag-quality-{args.dataset}-"))
    quiet = args.json
    t_all = t0 = time.perf_counter()
    data = work / "data"
    reuse = args.reuse and (work / "emb" / "manifest.json").exists()
    if not reuse:
        if folder is not None:
            src = Path(args.data_root) / folder
            if not src.is_dir():
                sys.exit(f"error: {src}: data set not found (pass --data-root)")
            (prepare_douban if args.dataset == "douban" else prepare_lastfm)(src, data)
        else:
            prepare_synthetic(data, seed=args.seed)
        split_dataset(data, work / "split", 0.2, args.seed, downsample=thin)
    split = json.loads((work / "split" / "manifest.json").read_text())
    train_dir, test_dir = work / "split" / "train", work / "split" / "test"
    t0 = _step("prepare + split", t0, quiet)
    balance = (
        args.hgnn_balance if args.hgnn_balance in ("min", "none") else _number(args.hgnn_balance)
    )
    hcfg = HGNNConfig(epochs=args.hgnn_epochs, hidden=128, seed=args.seed, balance=balance)
    if not reuse:
        gcfg = GraphConfig(encoder="none" if args.dataset == "douban" else "default")
        build_graph(train_dir, work / "graph", gcfg, quiet=True)
        t0 = _step("build graph (train part)", t0, quiet)
        train_hgnn(work / "graph", work / "hgnn", hcfg, quiet=quiet)
        export_embeddings(work / "hgnn", work / "emb", catalog=train_dir, quiet=True)
        t0 = _step("HGNN train + export", t0, quiet)
    for old in ("2t-hgnn", "2t-hgnn-no-tag", "train-no-tag"):
        shutil.rmtree(work / old, ignore_errors=True)
    # the user-decoupled model serves every item type: trained on all types' positives
    # (more signal for the sparse type), evaluated on the target type
    tcfg = TwoTowerConfig(epochs=args.tt_epochs, seed=args.seed, batch_size=args.batch_size,
                          patience=args.patience,
                          target_type=target if args.tt_target_only else None)  # fmt: skip
    train_twotower(train_dir, work / "emb", work / "2t-hgnn", tcfg, quiet=quiet)
    t0 = _step("2T-HGNN train", t0, quiet)
    report = evaluate_run(work / "2t-hgnn", test_dir, target, MODELS, quiet=quiet)
    t0 = _step("baselines + evaluation", t0, quiet)
    if args.dataset == "lastfm":  # the same two-tower without the tag weak signal
        notag = _without_signal(work, train_dir, test_dir, tcfg, "tag", target, quiet)
        report["results"]["2t-hgnn-notag"] = notag
        t0 = _step("2T-HGNN without tags", t0, quiet)
    return {
        "dataset": args.dataset,
        "target_type": target,
        "results": {
            m: {k: r.get(k) for k in (*KEYS, "users")} | _breakdown(r)
            for m, r in report["results"].items()
        },  # fmt: skip
        "split": {k: split[k] for k in ("method", "test_fraction", "seed", "downsample")},
        "config": {"hgnn": asdict(hcfg), "twotower": asdict(tcfg)},
        "seconds": round(time.perf_counter() - t_all, 1),
        "model_seconds": report["seconds"],
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
        "workdir": str(work),
    }


def _number(text: str) -> int | float:
    """``"20000"`` → 20000 (a cap), ``"2.5"`` → 2.5 (a ratio)."""
    return int(text) if text.isdigit() else float(text)


def _breakdown(r: dict[str, Any]) -> dict[str, Any]:
    """Warm/cold HR@10 and the tail tier's HR@10 (None when a group is empty)."""
    return {
        "warm_hr@10": (r.get("warm") or {}).get("hr@10"),
        "cold_hr@10": (r.get("cold") or {}).get("hr@10"),
        "tail_hr@10": ((r.get("tiers") or {}).get("tail") or {}).get("hr@10"),
    }


def _without_signal(
    work: Path, train_dir: Path, test_dir: Path, cfg: TwoTowerConfig, signal: str, target: str,
    quiet: bool,
) -> dict[str, Any]:  # fmt: skip
    """Train and evaluate 2T-HGNN on the training data minus one signal."""
    ds = read_dataset(train_dir)
    out = work / f"train-no-{signal}"
    out.mkdir(exist_ok=True)
    kept = ds.interactions.filter(pl.col("signal") != signal)
    write_dataset(out, ds.items, kept, ds.users, ds.queries)
    run_dir = work / f"2t-hgnn-no-{signal}"
    train_twotower(out, work / "emb", run_dir, cfg, quiet=quiet)
    users, u, items, i = user_item_vectors(run_dir)
    test = read_dataset(test_dir).interactions
    return evaluate_vectors(u.numpy(), i.numpy(), users, items, kept, test, target)


def table(out: dict[str, Any]) -> str:
    report = {"target_type": out["target_type"], "results": out["results"]}
    for r in report["results"].values():
        r["warm"], r["cold"] = ({"hr@10": r["warm_hr@10"]}, {"hr@10": r["cold_hr@10"]})
    return f"dataset {out['dataset']} ({out['seconds']}s)\n" + results_table(report)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--data-root", default="../shared/data", help="folder of the real data")
    ap.add_argument("--workdir", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hgnn-epochs", type=int, default=4)
    ap.add_argument(
        "--hgnn-balance",
        default="20000",
        help="multi-link target of the HGNN: min | none | cap per link type (default 20000)",
    )
    ap.add_argument("--tt-epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--tt-target-only", action="store_true", help="2T positives: target only")
    ap.add_argument("--reuse", action="store_true", help="reuse the workdir's split + HGNN")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out, indent=2) if args.json else table(out))


if __name__ == "__main__":
    main()
