"""Generative search + recommendation over Semantic IDs, per embedding space, over seeds,
next to dense-retrieval and two-tower references on the same inputs.

Measures the product: every stage runs with its defaults through the pipeline runner
(``audiograph run``). Per seed, under ``--workdir/seed<N>``:

1. ``split`` (seeded, leak-free: on Last.fm the item text is recounted per side from the
   tags users gave, and a test query is a tag first given to an artist in the test part,
   so it is never in the training text); the graph of the fit window, the HGNN, its export,
   the 2T-HGNN two-tower and the plain two-tower (``baseline``);
2. embedding spaces built on the train side only: ``content`` (MiniLM), ``search`` /
   ``multitask`` (MiniLM fine-tuned on train queries / plus co-interacting item pairs),
   ``rec`` (the HGNN export), ``fused`` (``search`` ⊕ ``rec``, concatenated);
3. per space: Semantic IDs and one generative model for both tasks (runner stages
   ``semantic_ids`` and ``generative``, defaults: training stops on the validation-loss
   plateau);
4. the same sampled test queries and users for every row (``generative_eval``): generative
   search and rec per space; dense retrieval with the content and the search-tuned
   encoder and BM25 (``bm25s``) over the item text; the two-towers and popularity for rec.

Each finished seed's report goes to ``--workdir/seed<N>/report.json`` (a rerun reuses it).
Reported: per row recall@10/@30 mean ± 95 % t-interval over seeds; per seed a paired
bootstrap over inputs of the recall@10 difference of each generative row vs its reference
(rec: the plain two-tower; search: the best of dense retrieval and BM25); the SID
statistics, training epochs, examples/s and p50 latency of one request.

    python benchmarks/generative.py --dataset lastfm --data-root ../shared/data \\
        --workdir WORK --save     # WORK: any folder outside the repository
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import generative_eval as ev
from quality import DATASETS, RESULTS, prepare
from quality_stats import interval, paired_bootstrap
from seeded import add_common_args, chosen, emit

from audiograph.core.atomic import write_json
from audiograph.pipeline.runner import read_experiment, run_experiment
from audiograph.semantic_ids.spaces import build_space, fuse_spaces

SPACES = ("content", "search", "multitask", "rec", "fused")
SEARCH_REFS = ("dense-content", "dense-search", "bm25")  # search's reference: the best of them
CHAIN = ("split", "graph", "hgnn", "export", "twotower", "baseline")


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(f"[generative] {msg}", file=sys.stderr, flush=True)


def _run(doc: dict[str, Any], until: str | None = None) -> tuple[dict[str, Path], Any]:
    exp = read_experiment(doc)
    done = run_experiment(exp, until, quiet=True)
    return {k: Path(v["path"]) for k, v in done.items()}, exp


def _settings(exp: Any) -> dict[str, Any]:
    s = {k: asdict(v) if is_dataclass(v) else v for k, v in exp.settings.items()}
    return json.loads(json.dumps(s, default=str))


def run_chain(work: Path, seed: int, data: Path, dataset: str) -> tuple[dict[str, Path], Any]:
    """The runner chain ``split`` … ``baseline`` at its defaults under ``work/chain`` (the
    two-tower validated on the dataset's target type)."""
    doc = {
        "experiment": {"out": str(work / "chain"), "seed": seed, "data": str(data)},
        "split": {},
        "graph": {},
        "hgnn": {},
        "export": {},
        "twotower": {"val_type": DATASETS[dataset]["target"]},
        "baseline": {},
    }
    return _run(doc, "baseline")


def run_generative(work: Path, seed: int, split: Path, emb: Path, name: str) -> tuple[dict, Any]:
    """Semantic IDs of ``emb`` and the generative model at their defaults under
    ``work/gen-<name>``."""
    given = {"split": str(split), "export": str(emb)}
    doc = {
        "experiment": {"out": str(work / f"gen-{name}"), "seed": seed, "given": given},
        "semantic_ids": {},
        "generative": {},
    }
    return _run(doc)


def spaces_of(split: Path, export: Path, work: Path, wanted: list[str]) -> dict[str, Path]:
    """Embedding directory per wanted space, and always ``content`` and ``search`` (the
    dense references); built once per seed folder."""
    dirs = {"rec": export}
    for space in ("content", "search", "multitask"):
        if space in wanted or space in ("content", "search"):
            out = work / f"emb-{space}"
            if not (out / "manifest.json").exists():
                build_space(space, split / "train", out)
            dirs[space] = out
    if "fused" in wanted:
        out = work / "emb-fused"
        if not (out / "manifest.json").exists():
            fuse_spaces([dirs["search"], dirs["rec"]], out, "concat")
        dirs["fused"] = out
    return {s: d for s, d in dirs.items() if s in wanted or s in ("content", "search")}


def one_seed(args: argparse.Namespace, data: Path, work: Path, seed: int) -> dict[str, Any]:
    quiet, t0 = args.json, time.perf_counter()
    wanted = args.spaces
    want = {
        "dataset": args.dataset,
        "spaces": wanted,
        "max_inputs": args.max_inputs,
        "search_excludes_train": True,
    }
    saved = work / "report.json"
    if saved.is_file():  # reused when it holds every wanted space of the same protocol
        old = json.loads(saved.read_text())
        had = old.get("want", {})
        same = ("dataset", "max_inputs", "search_excludes_train")
        if {k: had.get(k) for k in same} == {k: want[k] for k in same} and set(wanted) <= set(
            had.get("spaces", [])
        ):
            _log(quiet, f"seed {seed}: reusing {saved}")
            return old
    done, exp = run_chain(work, seed, data, args.dataset)
    split = done["split"]
    _log(quiet, f"seed {seed}: chain done ({time.perf_counter() - t0:.0f}s)")
    dirs = spaces_of(split, done["export"], work, wanted)
    inputs = ev.eval_inputs(split, args.max_inputs, seed)
    q, u = inputs["queries"], inputs["users"]
    rows: dict[str, Any] = {}
    named, none = inputs["named"], [set() for _ in inputs["named"]]

    def search_row(answer: Callable[[list[str], list[set[str]]], list[list[str]]]) -> dict:
        row = {"search": ev.score(answer(q, inputs["q_seen"]), inputs["q_rel"], q)}
        if named:  # the easier slice: the query names the item; nothing excluded
            row["named"] = ev.score(answer(named, none), inputs["n_rel"], named)
        return row

    for name in ("content", "search"):
        rows[f"dense-{name}"] = search_row(functools.partial(ev.dense_search, dirs[name]))
    rows["bm25"] = search_row(functools.partial(ev.bm25_search, split))
    for name, run in (("2t", done["baseline"]), ("2t-hgnn", done["twotower"])):
        rows[name] = {
            "rec": ev.score(ev.two_tower_rec(run, split, u, inputs["history"]), inputs["u_rel"], u)
        }
    rows["popularity"] = {
        "rec": ev.score(ev.popularity_rec(split, u, inputs["history"]), inputs["u_rel"], u)
    }
    settings = {}
    for space in wanted:
        ts = time.perf_counter()
        gen, gexp = run_generative(work, seed, split, dirs[space], space)
        settings = {k: _settings(gexp)[k] for k in ("semantic_ids", "generative")}
        ans = ev.generative_rows(gen["generative"], inputs)
        sid = json.loads((gen["semantic_ids"] / "manifest.json").read_text())["stats"]
        rows[f"gen-{space}"] = {
            "search": ev.score(ans["search"], inputs["q_rel"], q),
            "rec": ev.score(ans["rec"], inputs["u_rel"], u),
            **({"named": ev.score(ans["named"], inputs["n_rel"], named)} if named else {}),
            "p50_ms": ans["p50_ms"],
            "training": ev.training_log(gen["generative"]),
            "sid": {k: sid[k] for k in ("unique_fraction", "collision_rate", "levels") if k in sid},
            "seconds": round(time.perf_counter() - ts, 1),
        }
        r = rows[f"gen-{space}"]
        _log(
            quiet,
            f"seed {seed}: {space} search R@10 {r['search']['recall@10']:.4f}, rec "
            f"R@10 {r['rec']['recall@10']:.4f} ({r['seconds']}s)",
        )
    report = {
        "seed": seed,
        "rows": rows,
        "inputs": {"queries": len(q), "users": len(u), "named": len(named)},
        "settings": {**{k: _settings(exp)[k] for k in CHAIN}, **settings},
        "seconds_total": round(time.perf_counter() - t0, 1),
        "want": want,
    }
    report["bootstrap"] = seed_bootstrap(report, seed)
    write_json(saved, report)
    _log(quiet, f"seed {seed}: done in {report['seconds_total']:.0f}s -> {saved}")
    return report


def _pair(a: dict, b: dict, seed: int) -> dict | None:
    return paired_bootstrap(
        {"user_id": a["per_input"]["key"], "r": a["per_input"]["recall@10"]},
        {"user_id": b["per_input"]["key"], "r": b["per_input"]["recall@10"]},
        seed,
        key="r",
    )


def seed_bootstrap(report: dict[str, Any], seed: int) -> dict[str, Any]:
    """Paired per-input bootstrap of recall@10: each generative row vs the plain two-tower
    (rec) and vs the best search reference of this seed (dense or BM25)."""
    rows, out = report["rows"], {}
    dense = max((d for d in SEARCH_REFS if d in rows), key=lambda r: rows[r]["search"]["recall@10"])
    for name, r in rows.items():
        if name.startswith("gen-"):
            out[f"{name}_vs_2t"] = _pair(r["rec"], rows["2t"]["rec"], seed)
            out[f"{name}_vs_{dense}"] = _pair(r["search"], rows[dense]["search"], seed)
            if "named" in r:
                ref = max(
                    (d for d in SEARCH_REFS if "named" in rows.get(d, {})),
                    key=lambda d: rows[d]["named"]["recall@10"],
                )
                out[f"{name}_vs_{ref} (named)"] = _pair(r["named"], rows[ref]["named"], seed)
    return out


def frontier(report: dict[str, Any], seed: int) -> dict[str, list[str]]:
    """The search + rec frontier in one seed: for the multi-task and the fused row, the
    other generative rows better on **both** tasks beyond the paired interval (recall@10,
    lower bound of the paired bootstrap above 0). An empty list: on the frontier."""
    rows = report["rows"]
    gen = [n for n in rows if n.startswith("gen-")]

    def beats(a: str, b: str, task: str) -> bool:
        pair = _pair(rows[a][task], rows[b][task], seed)
        return pair is not None and pair["lo"] > 0

    return {
        name: [o for o in gen if o != name and all(beats(o, name, t) for t in ("search", "rec"))]
        for name in ("gen-multitask", "gen-fused")
        if name in rows
    }


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row and task: recall@k mean ± ci95 over the seeds that have the row (``seeds``);
    for generative rows the per-seed ratios of rec to 2T and of search to the best search
    reference (dense or BM25), and search + rec, with their intervals."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys(n for r in reports for n in r["rows"]))
    for name in names:
        have = [r for r in reports if name in r["rows"]]
        per = [r["rows"][name] for r in have]
        row: dict[str, Any] = {"seeds": [r["seed"] for r in have]}
        row |= {
            task: {f"recall@{k}": interval([p[task][f"recall@{k}"] for p in per]) for k in ev.KS}
            for task in ("search", "named", "rec")
            if task in per[0]
        }
        if name.startswith("gen-"):
            two = [r["rows"]["2t"]["rec"]["recall@10"] for r in have]
            dense = [
                max(r["rows"][d]["search"]["recall@10"] for d in SEARCH_REFS if d in r["rows"])
                for r in have
            ]
            r10 = {t: [p[t]["recall@10"] for p in per] for t in ("search", "rec")}
            row |= {
                "rec_vs_2t": interval([a / b for a, b in zip(r10["rec"], two, strict=True)]),
                "search_vs_dense": interval(
                    [a / b for a, b in zip(r10["search"], dense, strict=True)]
                ),
                "search_plus_rec": interval([a + b for a, b in zip(*r10.values(), strict=True)]),
                **{k: [p[k] for p in per] for k in ("p50_ms", "training", "sid")},
            }
        out[name] = row
    return out


def results_doc(
    dataset: str, seeds: list[int], reports: list[dict[str, Any]], summary: dict
) -> dict[str, Any]:
    """What ``--save`` writes: the summary, each seed's bootstraps and its report without
    the per-input recalls, the time and the machine."""
    return {
        "dataset": dataset,
        "seeds": seeds,
        "summary": summary,
        "bootstrap": {s: r["bootstrap"] for s, r in zip(seeds, reports, strict=True)},
        "frontier": {s: frontier(r, s) for s, r in zip(seeds, reports, strict=True)},
        "per_seed": [
            {k: v for k, v in r.items() if k != "rows"}
            | {
                "rows": {
                    n: {
                        t: {m: x for m, x in v.items() if m != "per_input"}
                        if isinstance(v, dict) and "per_input" in v
                        else v
                        for t, v in row.items()
                    }
                    for n, row in r["rows"].items()
                }
            }
            for r in reports
        ],
        "seconds": round(sum(r["seconds_total"] for r in reports), 1),  # reused seeds too
        "seconds_per_seed": [r["seconds_total"] for r in reports],
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("lastfm", "synthetic"), default="lastfm")
    add_common_args(ap, "spaces", SPACES, "generative-DATASET.json")
    args = ap.parse_args(argv)
    args.spaces = chosen(args.spaces, SPACES, "space")
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"ag-gen-{args.dataset}-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    data = work / "data"
    prepare(args.dataset, Path(args.data_root), data)
    reports = [one_seed(args, data, work / f"seed{s}", s) for s in seeds]
    out = results_doc(args.dataset, seeds, reports, summarize(reports))
    if args.save:
        write_json(RESULTS / f"generative-{args.dataset}.json", out)
    return emit(out, args.json, "generative_table")


if __name__ == "__main__":
    main()
