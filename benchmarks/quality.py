"""Recommendation quality of 2T-HGNN vs the baselines on the leak-free protocol, over seeds.

Measures the product: every stage runs with its defaults (the pipeline runner's
``audiograph run``; see :func:`experiment`); the experiment only names the target type
(two-tower ``val_type``, evaluate ``target_type``) and the dataset's own thinning.
``--set STAGE.KEY=VALUE`` (repeatable) tries a variant, recorded in the JSON's
``config.set``. Per seed, outputs under ``--workdir/seed<N>``:

1. ``split`` the dataset (seeded): test held out, train = *fit* + *label* window, the target
   type made sparse where the dataset says so (``adopters`` / ``downsample``) and a share
   of its items released only after the cut (``new_items``: the new-item slice);
   validation users are drawn per type, their label-window pairs kept out of the graph;
2. build the co-interaction graph on **all of train** (less those validation pairs), train
   the HGNN on it (it selects on its own held-out edges), export embeddings for the
   training catalog (new items through the text head);
3. the two-tower chooses its epochs on the windows (inputs from fit, positives from the
   label window, validated on the validation users' target-type labels), then is refitted
   on all of train; the plain 2T baseline (the runner's ``baseline`` stage) the same way
   with no HGNN inputs; LightGCN is tuned on the windows and refitted on all of train;
4. evaluate popularity, LLM-KNN, HGNN-KNN, LightGCN, 2T and 2T-HGNN on ``test`` with the
   evaluate stage's settings (users without a vector rank by popularity; warm /
   cold-for-type / no-history users and new / rare items reported apart); on
   ``synthetic`` also the ``oracle`` (the generator's hidden tastes) where the adapter
   provides ``oracle_vectors``.

Each finished seed's report is written to ``--workdir/seed<N>/report.json``; a rerun with
the same ``--workdir`` reuses the seeds whose recorded settings match (resume).

Reported: per model and metric the mean over seeds with a 95 % t-interval (new- and
rare-item recall@10 included); the paired per-seed difference and ratio of HR@10,
2T-HGNN vs 2T and vs LightGCN, with its t-interval; and within each seed a paired
per-user bootstrap (1,000 resamples of the evaluated users) 95 % interval of the same
HR@10 differences, for all and for cold-for-type users. Each report also holds the
seconds of every stage (``stage_seconds``).

Datasets: ``lastfm-vertical`` (artists whose top tag on the train side is ``electronic``
form the type ``vertical``, ``split --retype``, launched to 30 % of its users), ``lastfm``
(one type), ``douban`` (books at 10 % of their training pairs, no text), ``synthetic``.

    python benchmarks/quality.py --dataset lastfm-vertical --data-root ../shared/data \\
        --workdir WORK --json --save   # WORK: any folder outside the repository

``--save`` writes ``benchmarks/results/quality-<dataset>.json``; ``benchmarks/tables.py``
renders the tables of benchmarks/README.md from those files. Work files go to
``--workdir`` (default: a temporary folder), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import polars as pl
from quality_stats import (
    PAIRS,
    aggregate,
    bootstraps,
    difference,
    interval,
    parse_sets,
    per_seed_summary,
    seed_bootstraps,
)
from seeded import emit

import audiograph.graphs.adapters.synthetic as synthetic
from audiograph.core.atomic import write_json
from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.build import build_graph
from audiograph.graphs.contract import read_dataset
from audiograph.hgnn.export import export_embeddings
from audiograph.pipeline.runner import read_experiment, run_experiment
from audiograph.twotower.evaluate import evaluate_run
from audiograph.twotower.metrics import evaluate_vectors

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS: dict[str, dict[str, Any]] = {
    "lastfm-vertical": {
        "target": "vertical",
        "source": "lastfm-hetrec-2k",
        "retype": {"vertical": ["electronic"]},
        "adopters": {"vertical": 0.3},
        "new_items": {"vertical": 0.3},
    },
    "lastfm": {"target": "artist", "source": "lastfm-hetrec-2k"},
    "douban": {
        "target": "book",
        "source": "douban-music-book",
        "downsample": {"book": 0.1},
        "encoder": "none",
    },
    "synthetic": {"target": "audiobook", "source": None, "new_items": {"audiobook": 0.5}},
}
SYNTHETIC_USERS, SYNTHETIC_TASTES = 10000, 4  # ~1,000 audiobook users; taste not in text
PROTOCOL = 4  # 3: ties ranked against the relevant item; 4: the graph-kNN and peer rows
STAGES = ("split", "graph", "hgnn", "export", "twotower", "baseline", "evaluate")


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"[quality] {msg}", file=sys.stderr, flush=True)


def prepare(name: str, data_root: Path, out: Path) -> None:
    """The dataset ``name`` as a contract dataset in ``out`` (once for every seed, and
    once per work folder: a finished one is reused)."""
    spec, marker = DATASETS[name], out.parent / "prepared.json"
    what = {"dataset": name, "users": SYNTHETIC_USERS, "tastes": SYNTHETIC_TASTES, "v": 2}
    if out.is_dir() and marker.is_file() and json.loads(marker.read_text()) == what:
        return
    if out.exists():  # an unfinished preparation of an earlier call
        shutil.rmtree(out)
    if spec["source"] is None:
        synthetic.prepare_synthetic(out, users=SYNTHETIC_USERS, seed=0, tastes=SYNTHETIC_TASTES)
    else:
        src = data_root / spec["source"]
        if not src.is_dir():
            sys.exit(f"error: {src}: data set not found (pass --data-root)")
        if name == "douban":
            prepare_douban(src, out)
        else:
            prepare_lastfm(src, out)  # the vertical comes from the split's train side
    write_json(marker, what)


def experiment(
    dataset: str, sets: dict[str, dict[str, Any]], data: Path, work: Path, seed: int
) -> dict[str, Any]:
    """The pipeline-runner experiment of one seed: the product's defaults, the target
    type, the dataset's thinning and text encoder, and the ``--set`` overrides."""
    spec = DATASETS[dataset]
    tables: dict[str, dict[str, Any]] = {
        "split": {
            k: spec[k] for k in ("retype", "adopters", "downsample", "new_items") if spec.get(k)
        },
        "graph": {"encoder": spec["encoder"]} if spec.get("encoder") else {},
        "hgnn": {"val_type": spec["target"]},
        "export": {},
        "twotower": {"val_type": spec["target"]},
        "baseline": {},  # the plain 2T: the two-tower's settings without HGNN inputs
        "evaluate": {"target_type": spec["target"]},
    }
    for stage, table in sets.items():
        tables[stage] = {**tables[stage], **table}
    return {"experiment": {"out": str(work), "seed": seed, "data": str(data)}, **tables}


def oracle_vectors() -> Any:
    """``oracle_vectors(data_dir, users, items) -> (user_vecs, item_vecs)`` of the synthetic
    adapter, or None where it has none."""
    return getattr(synthetic, "oracle_vectors", None)


def recipe(args: argparse.Namespace, exp: Any) -> dict[str, Any]:
    """What a seed's report depends on besides the seed folder (resolved stage settings,
    so a changed product default reruns the seed too)."""
    settings = {k: asdict(v) if is_dataclass(v) else v for k, v in exp.settings.items()}
    doc = {
        "dataset": args.dataset,
        "train_graph": args.train_graph,
        "settings": settings,
        "oracle": args.dataset == "synthetic" and oracle_vectors() is not None,
        "protocol": PROTOCOL,
    }
    return json.loads(json.dumps(doc, default=str))


def one_seed(
    args: argparse.Namespace, sets: dict, data: Path, work: Path, seed: int
) -> dict[str, Any]:
    """Split, graph, HGNN, two-tower, baseline (through the pipeline runner) and the
    evaluation of one seed; the report (kept in ``work/report.json``: a later call with
    the same settings returns it)."""
    spec, quiet, t0 = DATASETS[args.dataset], args.json, time.perf_counter()
    exp = read_experiment(experiment(args.dataset, sets, data, work, seed))
    want, saved = recipe(args, exp), work / "report.json"
    if saved.is_file():
        report = json.loads(saved.read_text())
        if report.get("recipe") == want:
            _log(quiet, f"seed {seed}: reusing {saved}")
            return report
        _log(quiet, f"seed {seed}: settings changed since {saved}; running it again")
    records = run_experiment(exp, "baseline", tuple(args.force), quiet=quiet)
    done = {k: Path(v["path"]) for k, v in records.items()}
    t_eval = time.perf_counter()
    split = done["split"]
    # the evaluate stage's call, with per-user outcomes for the paired bootstrap
    report = evaluate_run(
        done["twotower"],
        split / "test",
        exp.settings["evaluate"],
        baseline_dir=done["baseline"],
        per_user=True,
    )
    if want["oracle"]:
        report["results"]["oracle"] = score_oracle(data, split, spec["target"])
    rec = [x for x in _metric(done["hgnn"], "val_rec_recall@10", None) if x is not None]
    report["validation"] = {  # what model selection saw (never the test part)
        "hgnn_mean_mrr": max(_metric(done["hgnn"], "val_mean_mrr")),
        **({"hgnn_rec_recall@10": max(rec)} if rec else {}),
        "2t-hgnn_recall@10": max(_metric(done["twotower"], "val_recall@10")),
        "2t_recall@10": max(_metric(done["baseline"], "val_recall@10")),
    }
    if args.train_graph:  # the same HGNN weights re-exported on a graph of all of train
        graph, emb = work / "graph-train", work / "emb-train"
        for old in (graph, emb):
            if old.exists():
                shutil.rmtree(old)
        build_graph(split / "train", graph, exp.settings["graph"], quiet=True)
        export_embeddings(done["hgnn"], emb, catalog=split / "train", graph=graph, quiet=True)
        again = evaluate_run(
            done["twotower"],
            split / "test",
            exp.settings["evaluate"],
            models=("hgnn", "2t-hgnn"),
            emb_dir=emb,
        )
        for m, r in again["results"].items():
            report["results"][f"{m}, train graph"] = r
    report["bootstrap"] = seed_bootstraps(report, seed)
    report["config"] = {k: want["settings"][k] for k in ("hgnn", "twotower", "evaluate")}
    report["selection"] = {  # the switches each two-tower run chose on its validation
        m: {k: sel.get(k) for k in ("chosen", "tried", "epochs")}
        for m, stage in (("2t-hgnn", "twotower"), ("2t", "baseline"))
        if (sel := json.loads((done[stage] / "config.json").read_text()).get("selection"))
    }
    report["split"] = json.loads((split / "manifest.json").read_text())
    report["seconds_total"] = round(time.perf_counter() - t0, 1)
    report["stage_seconds"] = {k: round(v["seconds"], 1) for k, v in records.items()}
    report["stage_seconds"]["evaluate"] = round(time.perf_counter() - t_eval, 1)
    report["recipe"] = want
    write_json(saved, report)
    _log(quiet, f"seed {seed}: done in {report['seconds_total']:.0f}s -> {saved}")
    return report


def score_oracle(data: Path, split: Path, target: str) -> dict[str, Any]:
    """The synthetic generator's hidden-taste vectors scored like every model (the same
    training catalog, train and test)."""
    train_ds = read_dataset(split / "train")
    train, items = train_ds.interactions, train_ds.items
    test = read_dataset(split / "test", drop_unknown=True).interactions
    users = pl.concat([train["user_id"], test["user_id"]]).unique(maintain_order=True)
    u, i = oracle_vectors()(data, users, items)
    return evaluate_vectors(u, i, users, items, train, test, target, per_user=True)


def _metric(run_dir: Path, key: str, *default: Any) -> list[Any]:
    """``key`` of every epoch line of a run's ``metrics.jsonl`` (``default`` where a line
    lacks it, when given)."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines if x]
    return [r.get(key, *default) if default else r[key] for r in rows]


def summarize(
    args: argparse.Namespace, sets: dict, reports: list[dict[str, Any]]
) -> dict[str, Any]:
    """The results JSON (no per-user data) of the seeds' reports."""
    seeds = list(range(len(reports)))
    diffs = {f"{a}_vs_{b}": difference(reports, a, b) for a, b in PAIRS}
    if args.train_graph:
        diffs["2t-hgnn, train graph_vs_2t"] = difference(reports, "2t-hgnn, train graph")
    return {
        "dataset": args.dataset,
        "target_type": DATASETS[args.dataset]["target"],
        "seeds": seeds,
        "results": aggregate(reports),
        "validation": {
            k: interval([r["validation"][k] for r in reports]) for k in reports[0]["validation"]
        },
        **{k: v for k, v in diffs.items() if v},
        "bootstrap": bootstraps(reports, seeds),
        "per_seed": [per_seed_summary(r) for r in reports],
        "split": {
            k: reports[0]["split"][k]
            for k in (
                "method",
                "test_fraction",
                "label_fraction",
                "downsample",
                "adopters",
                "new_items",
            )
            if k in reports[0]["split"]
        },
        "stage_seconds": [r.get("stage_seconds") for r in reports],
        "config": {**reports[0]["config"], "set": sets},
        "seconds": round(sum(r["seconds_total"] for r in reports), 1),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
    }


def save_variant(dataset: str, label: str, out: dict[str, Any], kind: str = "ablation") -> None:
    """Add (or replace) ``label`` in ``results/KIND-DATASET.json`` (the ablation tables of
    benchmarks/README.md are generated from it)."""
    f = RESULTS / f"{kind}-{dataset}.json"
    doc = json.loads(f.read_text()) if f.exists() else {"dataset": dataset, "variants": {}}
    keys = (
        "results",
        "validation",
        "2t-hgnn_vs_2t",
        "2t-hgnn_vs_lightgcn",
        "bootstrap",
        "config",
        "split",
        "seeds",
        "seconds",
    )
    doc["variants"][label] = {k: out[k] for k in keys if k in out}
    RESULTS.mkdir(exist_ok=True)
    f.write_text(json.dumps(doc, indent=2) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--data-root", default="../shared/data", help="folder of the real data")
    ap.add_argument(
        "--workdir",
        default=None,
        help="work folder; finished seeds in it are reused (default: a temp dir)",
    )
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="STAGE.KEY=VALUE",
        help="change one stage setting from the product default (repeatable; "
        f"stages: {', '.join(STAGES)}; VALUE read as JSON), e.g. hgnn.epochs=6",
    )
    ap.add_argument(
        "--train-graph",
        action="store_true",
        help="also score hgnn / 2t-hgnn with the HGNN re-exported on all of train",
    )
    ap.add_argument(
        "--force",
        default=[],
        type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
        metavar="STAGE[,STAGE]",
        help="rerun these stages (and what reads them) of every seed computed in this call, "
        "e.g. after a code change the stage cache cannot see",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--save", action="store_true", help=f"write {RESULTS}/quality-NAME.json")
    ap.add_argument(
        "--variant",
        default=None,
        help=f"record the run as this ablation variant in {RESULTS}/ablation-NAME.json",
    )
    ap.add_argument(
        "--changes",
        default=None,
        help=f"record the run as this row of {RESULTS}/changes-NAME.json (issue 36's changes)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.seeds < 1:
        sys.exit("error: --seeds must be at least 1")
    try:
        sets = parse_sets(args.sets, STAGES)
    except ValueError as e:
        sys.exit(f"error: {e}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"ag-quality-{args.dataset}-"))
    work.mkdir(parents=True, exist_ok=True)
    prepare(args.dataset, Path(args.data_root), work / "data")
    reports = [one_seed(args, sets, work / "data", work / f"seed{s}", s) for s in range(args.seeds)]
    out = summarize(args, sets, reports)
    if args.variant:
        save_variant(args.dataset, args.variant, out)
    if args.changes:
        save_variant(args.dataset, args.changes, out, "changes")
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"quality-{args.dataset}.json").write_text(json.dumps(out, indent=2) + "\n")
    return emit(out, args.json, "quality_table")


if __name__ == "__main__":
    main()
