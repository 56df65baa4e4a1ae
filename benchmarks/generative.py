"""Generative search + recommendation over Semantic IDs, one run per embedding space.

For a dataset (Last.fm with its tags as queries, or the synthetic catalog with its topic
queries): prepare → split (interactions per user, queries per item) → embedding spaces
built on the train side only (the chain and each space's Semantic IDs and generative run
go through the pipeline runner; the text spaces come from ``build_space``):

* ``content`` — MiniLM text vectors; ``search`` / ``multitask`` — MiniLM fine-tuned on
  (query, item) pairs / on those plus co-interacting (item, item) pairs
  (:mod:`audiograph.semantic_ids.spaces`); ``rec`` — HGNN item embeddings (graph of the
  split's fit window, as in the runner); ``fused-concat`` / ``fused-svd`` — ``search`` ⊕ ``rec``.

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

from audiograph.graphs.contract import read_dataset
from audiograph.hgnn.config import PAPER_RECIPE, HGNNConfig
from audiograph.pipeline.runner import read_experiment, run_experiment
from audiograph.semantic_ids.config import GenerativeConfig
from audiograph.semantic_ids.generate import evaluate_generative
from audiograph.semantic_ids.spaces import build_space, fuse_spaces
from audiograph.twotower.export import user_item_vectors
from audiograph.twotower.metrics import evaluate_vectors

SPACES = ("content", "search", "rec", "multitask", "fused-concat", "fused-svd")
# Sized for the 30-minute budget on 2 CPU cores: on Last.fm every model sees 1-1.6 passes
# over its examples, so no dropout (35 % faster steps, little to regularise yet).
GEN = GenerativeConfig(d_model=128, d_ff=256, layers=2, heads=4, dropout=0.0, history=10,
                       epochs=4, batch_size=256, lr=2e-3, warmup_steps=100,
                       search_per_epoch=30000, rec_per_epoch=30000)  # fmt: skip
# the ``rec`` space's HGNN
HGNN_REC = HGNNConfig(**PAPER_RECIPE, epochs=2, balance=20000)  # hidden 128


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _run(doc: dict[str, Any]) -> dict[str, Path]:
    """Run an experiment through the pipeline runner; ``{stage: output path}``."""
    done = run_experiment(read_experiment(doc), quiet=True)
    return {name: Path(d["path"]) for name, d in done.items()}


def chain(args: argparse.Namespace, work: Path, wanted: list[str]) -> dict[str, Path]:
    """The shared experiment: data, split, and, when a space needs it, the HGNN chain
    (graph of the fit window, HGNN, export) and the plain two-tower reference."""
    if args.dataset == "lastfm":
        src = Path(args.data_root) / "lastfm-hetrec-2k"
        if not src.is_dir():
            sys.exit(f"error: {src}: data set not found (pass --data-root)")
        prepare = {"adapter": "lastfm", "src": str(src)}
    else:
        prepare = {"adapter": "synthetic"}
    doc: dict[str, Any] = {"experiment": {"out": str(work / "chain"), "seed": args.seed},
                           "prepare": prepare, "split": {"test_fraction": 0.2}}  # fmt: skip
    if any(s == "rec" or s.startswith("fused") for s in wanted):
        doc |= {"graph": {}, "hgnn": asdict(HGNN_REC) | {"seed": args.seed}, "export": {}}
    if args.two_tower:
        doc["baseline"] = {}
    return _run(doc)


def build_spaces(work: Path, done: dict[str, Path], wanted: list[str], quiet: bool) -> dict:
    """Embedding directory per wanted space: the text spaces by ``build_space`` on the train
    part, ``rec`` = the chain's HGNN export, the fused ones by ``fuse_spaces``."""
    train = done["split"] / "train"
    dirs, seconds = {}, {}
    for space in ("content", "search", "multitask"):
        if space in wanted or (space == "search" and any(s.startswith("fused") for s in wanted)):
            t0 = time.perf_counter()
            if not (work / f"emb-{space}" / "manifest.json").exists():
                build_space(space, train, work / f"emb-{space}", quiet=quiet)
            dirs[space], seconds[space] = work / f"emb-{space}", time.perf_counter() - t0
            _log(f"[generative] space {space}: {seconds[space]:.1f}s", quiet)
    if "export" in done:
        dirs["rec"] = done["export"]
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


def two_tower_reference(run: Path, split: Path) -> dict:
    """Plain two-tower (text + features, no HGNN) rec Recall@10/@30 on the test split."""
    train, test = split / "train", split / "test"
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
    t0 = time.perf_counter()
    done = chain(args, work, wanted)
    _log(f"[generative] data, split and HGNN chain: {time.perf_counter() - t0:.1f}s", quiet)
    spaces = build_spaces(work, done, wanted, quiet)
    gen = replace(GEN, epochs=args.epochs, seed=args.seed)
    test = done["split"] / "test"
    results: dict[str, Any] = {}
    for space in wanted:
        t0 = time.perf_counter()
        per_space = _run({
            "experiment": {"out": str(work / f"gen-{space}"), "seed": args.seed,
                           "given": {"split": str(done["split"]),
                                     "export": str(spaces["dirs"][space])}},
            "semantic_ids": {"levels": 2, "codebook_size": 256},
            "generative": asdict(gen),
        })  # fmt: skip
        report = evaluate_generative(per_space["generative"], test, max_inputs=args.max_inputs)
        st = json.loads((per_space["semantic_ids"] / "manifest.json").read_text())["stats"]
        results[space] = {
            **{f"{task}_{k}": v for task, r in report.items() for k, v in r.items()},
            "sid_unique_fraction": st["unique_fraction"],
            "sid_collision_rate": st["collision_rate"],
            "sid_levels": st["levels"],  # per level: usage (share of codes used), entropy
            "seconds": round(time.perf_counter() - t0 + spaces["seconds"].get(space, 0.0), 1),
        }
        _log(f"[generative] {space}: {json.dumps(results[space])}", quiet)
    reference = two_tower_reference(done["baseline"], done["split"]) if args.two_tower else {}
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
