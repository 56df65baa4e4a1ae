"""Generative search + recommendation over Semantic IDs, one run per embedding space.

For a dataset (Last.fm with its tags as queries, or the synthetic catalog with its topic
queries): prepare → split (interactions per user, queries per item) → embedding spaces
built on the train side only:

* ``content`` — MiniLM text vectors; ``search`` / ``multitask`` — MiniLM fine-tuned on
  (query, item) pairs / on those plus co-interacting (item, item) pairs
  (:mod:`audiograph.semantic_ids.spaces`); ``rec`` — HGNN item embeddings (graph of the train
  interactions); ``fused-concat`` / ``fused-svd`` — ``search`` ⊕ ``rec``.

Each space → Semantic IDs (RQ-KMeans 2 × 256 + disambiguation) → one generative T5
trained on both tasks → search and rec Recall@10/@30 on the test side, next to the SID
stats. The plain two-tower model (no HGNN) is the non-generative rec reference.

    python benchmarks/generative.py --dataset lastfm --data-root ../shared/data --json
    python benchmarks/generative.py --dataset synthetic --workdir /tmp/ag-gen --spaces content,rec
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.split import split_dataset
from audiograph.hgnn.export import export_embeddings
from audiograph.hgnn.train import HGNNConfig, train_hgnn
from audiograph.semantic_ids import semantic_ids
from audiograph.semantic_ids.generate import evaluate_generative
from audiograph.semantic_ids.generative import GenerativeConfig, train_generative
from audiograph.semantic_ids.spaces import build_space, fuse_spaces
from audiograph.twotower.export import user_item_vectors
from audiograph.twotower.metrics import evaluate_vectors
from audiograph.twotower.train import TwoTowerConfig, train_twotower

SPACES = ("content", "search", "rec", "multitask", "fused-concat", "fused-svd")
# Sized for the 30-minute budget on 2 CPU cores: on Last.fm every model sees 1-1.6 passes
# over its examples, so no dropout (35 % faster steps, little to regularise yet).
GEN = GenerativeConfig(d_model=128, d_ff=256, layers=2, heads=4, dropout=0.0, history=10,
                       epochs=4, batch_size=256, lr=2e-3, warmup_steps=100,
                       search_per_epoch=30000, rec_per_epoch=30000)  # fmt: skip


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def build_spaces(work: Path, train: Path, wanted: list[str], seed: int, quiet: bool) -> dict:
    """Embedding directory per wanted space (``rec`` and the fused ones need the HGNN)."""
    dirs, seconds = {}, {}
    for space in ("content", "search", "multitask"):
        if space in wanted or (space == "search" and any(s.startswith("fused") for s in wanted)):
            t0 = time.perf_counter()
            if not (work / f"emb-{space}" / "manifest.json").exists():
                build_space(space, train, work / f"emb-{space}", quiet=quiet)
            dirs[space], seconds[space] = work / f"emb-{space}", time.perf_counter() - t0
            _log(f"[generative] space {space}: {seconds[space]:.1f}s", quiet)
    if any(s == "rec" or s.startswith("fused") for s in wanted):
        t0 = time.perf_counter()
        if not (work / "emb-rec" / "manifest.json").exists():
            build_graph(train, work / "graph", GraphConfig(), quiet=True)
            cfg = HGNNConfig(epochs=2, hidden=128, seed=seed, balance=20000)
            train_hgnn(work / "graph", work / "hgnn", cfg, quiet=True)
            export_embeddings(work / "hgnn", work / "emb-rec", catalog=train, quiet=True)
        dirs["rec"], seconds["rec"] = work / "emb-rec", time.perf_counter() - t0
        _log(f"[generative] space rec (graph + HGNN): {seconds['rec']:.1f}s", quiet)
    for method in ("concat", "svd"):
        name = f"fused-{method}"
        if name in wanted:
            out = work / f"emb-{name}"
            if not (out / "manifest.json").exists():
                fuse_spaces(
                    [dirs["search"], dirs["rec"]], out, "svd-sum" if method == "svd" else method
                )
            dirs[name] = out
    return {"dirs": dirs, "seconds": seconds}


def two_tower_reference(work: Path, train: Path, test: Path, seed: int, quiet: bool) -> dict:
    """Plain two-tower (text + features, no HGNN) rec Recall@10/@30 on the test split."""
    run = work / "2t"
    if not (run / "model.safetensors").exists():
        train_twotower(train, None, run, TwoTowerConfig(use_hgnn=False, seed=seed), quiet=True)
    users, u, items, v = user_item_vectors(run, train)
    tr, te = read_dataset(train).interactions, read_dataset(test).interactions
    out = {}
    for t in items["item_type"].unique().sort().to_list():
        for k in (10, 30):
            m = evaluate_vectors(u.numpy(), v.numpy(), users, items, tr, te, t, k=k)
            out.setdefault(t, {})[f"recall@{k}"] = m[f"recall@{k}"]
        out[t]["users"] = m["users"]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"ag-gen-{args.dataset}-"))
    quiet, t_all = args.json, time.perf_counter()
    wanted = [s.strip() for s in args.spaces.split(",")] if args.spaces else list(SPACES)
    if unknown := set(wanted) - set(SPACES):
        sys.exit(f"error: unknown space(s) {sorted(unknown)}; choose from {', '.join(SPACES)}")
    data, split = work / "data", work / "split"
    if not (split / "manifest.json").exists():
        if args.dataset == "lastfm":
            src = Path(args.data_root) / "lastfm-hetrec-2k"
            if not src.is_dir():
                sys.exit(f"error: {src}: data set not found (pass --data-root)")
            prepare_lastfm(src, data)
        else:
            prepare_synthetic(data, seed=args.seed)
        split_dataset(data, split, 0.2, args.seed)
    train, test = split / "train", split / "test"
    spaces = build_spaces(work, train, wanted, args.seed, quiet)
    gen = replace(GEN, epochs=args.epochs, seed=args.seed)
    results: dict[str, Any] = {}
    for space in wanted:
        t0 = time.perf_counter()
        sid, run_dir = work / f"sid-{space}", work / f"gen-{space}"
        m = semantic_ids(spaces["dirs"][space], sid, levels=2, codebook_size=256, seed=args.seed)
        if not (run_dir / "checkpoint.pt").exists():
            train_generative(train, sid, run_dir, gen, quiet=quiet)
        report = evaluate_generative(run_dir, test, max_inputs=args.max_inputs)
        st = m["stats"]
        results[space] = {
            **{f"{task}_{k}": v for task, r in report.items() for k, v in r.items()},
            "sid_unique_fraction": st["unique_fraction"],
            "sid_collision_rate": st["collision_rate"],
            "sid_levels": st["levels"],  # per level: usage (share of codes used), entropy
            "seconds": round(time.perf_counter() - t0 + spaces["seconds"].get(space, 0.0), 1),
        }
        _log(f"[generative] {space}: {json.dumps(results[space])}", quiet)
    reference = two_tower_reference(work, train, test, args.seed, quiet) if args.two_tower else {}
    return {
        "dataset": args.dataset,
        "spaces": results,
        "two_tower_rec": reference,
        "generative_config": asdict(gen),
        "eval_inputs_per_task": args.max_inputs,
        "seconds": round(time.perf_counter() - t_all, 1),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
        "workdir": str(work),
    }


def table(out: dict[str, Any]) -> str:
    rows = ["| space | search R@10 | search R@30 | rec R@10 | rec R@30 | unique SIDs | s |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for space, r in out["spaces"].items():
        cells = [
            r.get(k)
            for k in ("search_recall@10", "search_recall@30", "rec_recall@10", "rec_recall@30")
        ]
        rows.append(f"| {space} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells)
                    + f" | {r['sid_unique_fraction']:.3f} | {r['seconds']} |")  # fmt: skip
    for t, r in out["two_tower_rec"].items():
        rows.append(
            f"| two-tower ({t}) | - | - | {r['recall@10']:.4f} | {r['recall@30']:.4f} | - | - |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("lastfm", "synthetic"), default="synthetic")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--workdir", default=None, help="reuse data/spaces/runs from here")
    ap.add_argument("--spaces", default=None, help=f"comma-separated subset of {','.join(SPACES)}")
    ap.add_argument("--epochs", type=int, default=GEN.epochs)
    ap.add_argument("--max-inputs", type=int, default=500, help="eval inputs per task (sampled)")
    ap.add_argument("--no-two-tower", dest="two_tower", action="store_false")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out, indent=2) if args.json else table(out))


if __name__ == "__main__":
    main()
