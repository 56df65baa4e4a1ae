"""Personalised generative search and recommendation from user embeddings (Embedding-to-
Prefix) on Last.fm, over seeds, at the product defaults.

Per seed, under ``--workdir/seed<N>`` (the chain and the backbone are the runs
``benchmarks/generative.py`` makes, shared when both use the same workdir):

1. the runner chain ``split`` … ``baseline`` (leak-free: item tags are recounted per side
   from the tags users gave; the test part's tag assignments reach no training input);
2. the backbone: ``semantic_ids`` + ``generative`` on the HGNN export (what ``audiograph
   run`` trains), frozen from here on;
3. per user-vector source (``twotower``: the user tower; ``hgnn``: the mean HGNN vector of
   the user's training items), the runner stages ``users`` + ``prefix`` at their defaults;
4. the same sampled inputs for every row:

   * personal search: ``(user, tag)`` pairs of the test part's tag assignments (the tag is
     a training query, the user has training interactions); relevant = the artists this
     user gave that tag in the test part; every row excludes the artists the user gave it
     in training. Rows: the frozen model without the user (``gen``), with the user token
     (``gen+user:<source>``), and query-only dense retrieval (content and search-tuned
     encoders);
   * rec: test users with new test items; every row excludes the user's training items.
     Rows: the frozen model given the last ``history`` items (``gen-history``), the user
     token alone (``gen+user:<source>``), the plain two-tower (``2t``).

Per seed: recall@10/@30, a paired bootstrap of recall@10 per input (with vs without the
user; user token vs history), tokens per request and the p50 latency of one request, the
prefix's trainable parameters and training time. Each finished seed is saved to
``--workdir/seed<N>/prefix-report.json`` and reused.

    python benchmarks/prefix.py --data-root ../shared/data --workdir WORK --save
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import generative as gb
import generative_eval as ev
import numpy as np
from quality import RESULTS, prepare
from quality_stats import interval
from seeded import add_common_args, chosen, emit

from audiograph.core.atomic import write_json
from audiograph.graphs.contract import read_dataset
from audiograph.semantic_ids.examples import split_personal_targets
from audiograph.semantic_ids.generate import recommend, search
from audiograph.semantic_ids.prefix import (
    load_prefix,
    personal_search,
    recommend_for_users,
    request_tokens,
)

SOURCES = ("twotower", "hgnn")


def personal_inputs(split: Path, max_inputs: int, seed: int) -> dict[str, Any]:
    """Sampled test ``(user, tag)`` pairs: ``users``, ``queries``, ``rel`` and ``seen``
    (item-id sets: the test artists, and the artists the user gave that tag in training)."""
    train, test = read_dataset(split / "train"), read_dataset(split / "test")
    items = train.items["item_id"]
    users, qs, rel, seen = split_personal_targets(train, test, items)
    has_train = set(train.interactions["user_id"].unique().to_list())
    keep = [i for i, u in enumerate(users) if u in has_train]
    rng = np.random.default_rng([seed, 13])
    if len(keep) > max_inputs:
        keep = [keep[i] for i in np.sort(rng.choice(len(keep), max_inputs, replace=False))]
    ids = items.to_list()
    return {
        "users": [users[i] for i in keep],
        "queries": [qs[i] for i in keep],
        "rel": [{ids[r] for r in rel[i]} for i in keep],
        "seen": [{ids[r] for r in seen[i]} for i in keep],
        "pairs": len(users),
    }


def _p50(call: Any, n: int) -> float | None:
    times = []
    for i in range(min(20, n)):
        t0 = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 1) if times else None


def prefix_rows(prefix_dir: Path, ps: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    """Answers (item ids) of the frozen model with and without the user token, latency."""
    run = load_prefix(prefix_dir)
    gen, k = run.gen, max(ev.KS)
    ids = gen.codes["item_id"].to_list()
    to_row = {x: i for i, x in enumerate(ids)}

    def rows(xs: list[set[str]]) -> list[set[int]]:
        return [{to_row[x] for x in s if x in to_row} for s in xs]

    s_seen = rows(ps["seen"])
    hists = [np.array([to_row[x] for x in h if x in to_row], np.int64) for h in rec["history"]]
    h_seen = [set(h.tolist()) for h in hists]
    u, q, users = ps["users"], ps["queries"], rec["users"]
    out = {
        "search_user": personal_search(run, u, q, k, s_seen),
        "search_plain": personal_search(run, u, q, k, s_seen, with_user=False),
        "rec_user": recommend_for_users(run, users, k, h_seen),
        "rec_history": recommend(gen, hists, k),
    }
    out = {name: [[ids[i] for i in a] for a in ans] for name, ans in out.items()}
    out["p50_ms"] = {
        "search_user": _p50(
            lambda i: personal_search(run, [u[i]], [q[i]], 10, [s_seen[i]]), len(u)
        ),
        "search_plain": _p50(lambda i: search(gen, [q[i]], 10, exclude=[s_seen[i]]), len(u)),
        "rec_user": _p50(
            lambda i: recommend_for_users(run, [users[i]], 10, [h_seen[i]]), len(users)
        ),
        "rec_history": _p50(lambda i: recommend(gen, [hists[i]], 10), len(users)),
    }
    tokens = request_tokens(run, hists)
    out["tokens"] = {"user": tokens["user_token"], "history": tokens["history"]}
    out["trainable_parameters"] = run.config["trainable_parameters"]
    return out


def one_seed(args: argparse.Namespace, data: Path, work: Path, seed: int) -> dict[str, Any]:
    quiet, t0, saved = args.json, time.perf_counter(), work / "prefix-report.json"
    want = {"sources": args.sources, "max_inputs": args.max_inputs}
    if saved.is_file() and (old := json.loads(saved.read_text())).get("want") == want:
        gb._log(quiet, f"seed {seed}: reusing {saved}")
        return old
    done, _ = gb.run_chain(work, seed, data, "lastfm")
    split = done["split"]
    backbone, _ = gb.run_generative(work, seed, split, done["export"], "rec")
    gb._log(quiet, f"seed {seed}: chain and backbone ready ({time.perf_counter() - t0:.0f}s)")
    dirs = gb.spaces_of(split, done["export"], work, [])
    ps = personal_inputs(split, args.max_inputs, seed)
    rec = ev.eval_inputs(split, args.max_inputs, seed)
    keys = [f"{u}\t{q}" for u, q in zip(ps["users"], ps["queries"], strict=True)]
    rows: dict[str, Any] = {}
    for name in ("content", "search"):
        found = ev.dense_search(dirs[name], ps["queries"], ps["seen"])
        rows[f"dense-{name}"] = {"search": ev.score(found, ps["rel"], keys)}
    two_t = ev.two_tower_rec(done["baseline"], split, rec["users"], rec["history"])
    rows["2t"] = {"rec": ev.score(two_t, rec["u_rel"], rec["users"])}
    for source in args.sources:
        ts = time.perf_counter()
        given = {
            "split": str(split),
            "twotower": str(done["twotower"]),
            "export": str(done["export"]),
            "generative": str(backbone["generative"]),
        }
        out, _ = gb._run(
            {
                "experiment": {"out": str(work / f"prefix-{source}"), "seed": seed, "given": given},
                "users": {"source": source},
                "prefix": {},
            }
        )
        trained = time.perf_counter() - ts
        ans = prefix_rows(out["prefix"], ps, rec)
        if "gen" not in rows:
            rows["gen"] = {
                "search": ev.score(ans["search_plain"], ps["rel"], keys),
                "rec": ev.score(ans["rec_history"], rec["u_rel"], rec["users"]),
                "p50_ms": {
                    t: ans["p50_ms"][f"{t}_{m}"]
                    for t, m in (("search", "plain"), ("rec", "history"))
                },
                "tokens": {"rec": ans["tokens"]["history"]},
            }
        rows[f"gen+user:{source}"] = {
            "search": ev.score(ans["search_user"], ps["rel"], keys),
            "rec": ev.score(ans["rec_user"], rec["u_rel"], rec["users"]),
            "p50_ms": {t: ans["p50_ms"][f"{t}_user"] for t in ("search", "rec")},
            "tokens": {"rec": ans["tokens"]["user"]},
            "trainable_parameters": ans["trainable_parameters"],
            "training": ev.training_log(out["prefix"]),
            "seconds": round(trained, 1),
        }
        r = rows[f"gen+user:{source}"]
        got = {t: (r[t]["recall@10"], rows["gen"][t]["recall@10"]) for t in ("search", "rec")}
        gb._log(
            quiet,
            f"seed {seed}: {source} personal search R@10 %.4f (without user %.4f), "
            "rec R@10 %.4f (history %.4f)" % (*got["search"], *got["rec"]),
        )
    report = {
        "seed": seed,
        "rows": rows,
        "want": want,
        "inputs": {
            "personal_search": len(keys),
            "personal_pairs": ps["pairs"],
            "rec": len(rec["users"]),
        },
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    report["bootstrap"] = {
        f"{name}_{task}_vs_{ref}": gb._pair(rows[name][task], rows[ref][task], seed)
        for name in rows
        if name.startswith("gen+user")
        for task, ref in (("search", "gen"), ("search", "dense-search"), ("rec", "gen"))
    }
    write_json(saved, report)
    gb._log(quiet, f"seed {seed}: done in {report['seconds_total']:.0f}s -> {saved}")
    return report


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row and task: recall@k mean ± ci95 over seeds; for ``gen+user`` rows the
    per-seed ratios to the frozen model without the user (search) and with the history
    (rec), with their intervals."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(n for r in reports for n in r["rows"]):
        per = [r["rows"][name] for r in reports if name in r["rows"]]
        row: dict[str, Any] = {"seeds": len(per)}
        for task in ("search", "rec"):
            if task in per[0]:
                row[task] = {
                    f"recall@{k}": interval([p[task][f"recall@{k}"] for p in per]) for k in ev.KS
                }
        if name.startswith("gen+user"):
            gen = [r["rows"]["gen"] for r in reports if name in r["rows"]]
            row |= {
                f"{t}_vs_gen": interval(
                    [p[t]["recall@10"] / g[t]["recall@10"] for p, g in zip(per, gen, strict=True)]
                )
                for t in ("search", "rec")
            }
            row |= {k: [p[k] for p in per] for k in ("trainable_parameters", "training")}
        row |= {k: [p[k] for p in per] for k in ("p50_ms", "tokens") if k in per[0]}
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, "sources", SOURCES, "prefix-lastfm.json")
    args = ap.parse_args(argv)
    args.sources = chosen(args.sources, SOURCES, "source")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ag-prefix-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    prepare("lastfm", Path(args.data_root), work / "data")
    reports = [one_seed(args, work / "data", work / f"seed{s}", s) for s in seeds]
    out = gb.results_doc("lastfm", seeds, reports, summarize(reports))
    if args.save:
        write_json(RESULTS / "prefix-lastfm.json", out)
    return emit(out, args.json, "prefix_table")


if __name__ == "__main__":
    main()
