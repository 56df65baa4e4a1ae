"""HGNN link-prediction benchmark on real data: quality per link type and training speed.

Protocol (datasets, graphs and HGNN runs through the pipeline runner, one experiment per
data set; validation through ``audiograph.hgnn.validate``):

* **Last.fm** (HetRec 2011, artist–artist co-listening, MiniLM text features): HGNN vs the
  raw text embeddings. The text baseline scores the *same* held-out edges against the
  *same* candidates (``split_edges`` and ``link_metrics`` with the same seed) using the
  L2-normalized MiniLM vectors ``data[t].x`` instead of the model output. Last.fm has a
  single link type, so multi-link balancing is a no-op there and runs once.
* **Douban** (music + book ratings, no text): book rating rows are downsampled to
  ``--book-fraction`` (10 %, fixed seed; the book catalog is kept, so most books become
  isolated nodes), which makes books the sparse "new" type. Three runs per seed:
  unbalanced (``balance="none"``, every supervision edge every epoch, natural type
  proportions), multi-link balanced (``balance="min"``) for the same number of epochs,
  and ``"min"`` for as many epochs as it takes to see the same number of supervision
  edges as the unbalanced run (equal training budget).
* Metrics: validation AUC / Recall@10 / MRR per link type (``audiograph.hgnn.validate``) after the
  last epoch (no early stopping); training speed = supervision edges / training seconds
  (evaluation excluded), from ``metrics.jsonl``.

    python benchmarks/hgnn.py --data-root ../shared/data            # table (~10 min, 2-core CPU)
    python benchmarks/hgnn.py --data-root ../shared/data --quick    # smoke run (< 3 min)
    python benchmarks/hgnn.py --json                                # one JSON object

The first run ever encodes the 17,632 Last.fm artist texts (3-5 min on a 2-core CPU);
they are cached in the default text cache (``$AUDIOGRAPH_CACHE``) afterwards. Prepared
datasets, graphs and runs go to ``--workdir`` (default: a folder in the system temp dir),
never into the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from audiograph.graphs.adapters.common import save_dataset
from audiograph.graphs.config import GraphConfig
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.store import load_graph
from audiograph.hgnn.config import PAPER_RECIPE, HGNNConfig
from audiograph.hgnn.validate import link_metrics, split_edges
from audiograph.pipeline.runner import read_experiment, run_experiment
from audiograph.samplers import NeighborSampler
from audiograph.samplers.multilink import balanced_counts, link_edges

LINK_NAMES = {
    "artist__co__artist": "artist–artist",
    "music__co__music": "music–music",
    "music__co__book": "music–book",
    "book__co__book": "book–book",
}


class TextOnly(nn.Module):
    """The raw-text baseline in the model interface ``link_metrics`` expects: the embedding
    of a node is its L2-normalized text vector (message passing is ignored)."""

    def encode_input(
        self, t: str, n_id: torch.Tensor, x: torch.Tensor | None, has_text: torch.Tensor | None
    ) -> torch.Tensor:
        return x

    def forward(self, h0: dict[str, torch.Tensor], *graph: Any) -> dict[str, torch.Tensor]:
        return {t: F.normalize(v, dim=-1) for t, v in h0.items()}


def text_baseline(graph_dir: Path, cfg: HGNNConfig) -> dict[str, dict[str, float]]:
    """Validation metrics of the normalized text vectors, same split and candidates as
    ``train_hgnn`` with ``cfg`` (``split_edges`` / ``link_metrics`` with ``cfg.seed``)."""
    train_data, val_edges = split_edges(load_graph(graph_dir), cfg.val_fraction, cfg.seed)
    sampler = NeighborSampler(train_data, cfg.fanout)
    has_text = {t: train_data[t].has_text for t in train_data.node_types}
    return link_metrics(
        TextOnly(),
        sampler,
        val_edges,
        has_text,
        cfg.eval_candidates,
        cfg.max_val_edges,
        cfg.seed,
    )


def downsample_books(src: Path, out: Path, fraction: float, seed: int) -> dict[str, int]:
    """Copy dataset ``src`` to ``out`` keeping ``fraction`` of the book interaction rows
    (uniform without replacement, ``seed``); music rows and the whole catalog are kept."""
    ds = read_dataset(src)
    is_book = ds.interactions["item_id"].str.starts_with("book:").to_numpy()
    book_rows = np.flatnonzero(is_book)
    rng = np.random.default_rng(seed)
    kept = np.sort(rng.permutation(book_rows)[: round(fraction * len(book_rows))])
    keep = np.zeros(len(is_book), dtype=bool)
    keep[~is_book] = True
    keep[kept] = True
    inter = ds.interactions.filter(pl.Series(keep))
    summary = {
        "book_fraction": fraction,
        "seed": seed,
        "book_rows": len(book_rows),
        "book_rows_kept": len(kept),
        "music_rows": int((~is_book).sum()),
    }
    save_dataset(out, "douban-books-downsampled", ds.items, inter, summary=summary)
    return summary


def supervision_sizes(graph_dir: Path, cfg: HGNNConfig) -> dict[str, int]:
    """Training supervision edges per link type (after the validation split)."""
    train_data, _ = split_edges(load_graph(graph_dir), cfg.val_fraction, cfg.seed)
    return {"__".join(et): int(e.shape[1]) for et, e in link_edges(train_data).items()}


def _run(doc: dict[str, Any], force: tuple[str, ...] = ()) -> dict[str, Path]:
    """Run an experiment through the pipeline runner; ``{stage: output path}``."""
    done = run_experiment(read_experiment(doc), force=force, quiet=True)
    return {name: Path(d["path"]) for name, d in done.items()}


def run(exp: dict[str, Any], cfg: HGNNConfig, label: str) -> dict[str, Any]:
    """One HGNN training run of the experiment ``exp`` (its graph cached, the HGNN always
    retrained); last-epoch metrics plus training totals."""
    t0 = time.perf_counter()
    print(f"[bench-hgnn] {label}: {cfg.epochs} epochs, balance={cfg.balance}", file=sys.stderr)
    run_dir = _run({**exp, "hgnn": asdict(cfg)}, force=("hgnn",))["hgnn"]
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    last = rows[-1]
    seconds = sum(r["seconds"] for r in rows)
    edges = sum(r["edges_per_s"] * r["seconds"] for r in rows)
    print(
        f"[bench-hgnn] {label}: done in {wall:.1f}s "
        f"({edges:,.0f} supervision edges, {edges / seconds:,.0f} edges/s)",
        file=sys.stderr,
    )
    return {
        "label": label,
        "epochs": len(rows),
        "balance": cfg.balance,
        "seed": cfg.seed,
        "val": last["val"],
        "train_edges": round(edges),
        "train_seconds": seconds,
        "edges_per_s": edges / seconds,
        "wall_seconds": wall,
    }


def prepare(data_root: Path, work: Path, gcfg: GraphConfig, book_fraction: float) -> dict:
    """The experiments of both benchmarks (data and graph stages run, cached by the runner;
    text is cached too): ``{"lastfm": exp, "douban": exp, "info": ...}``."""
    t0 = time.perf_counter()
    lastfm = {
        "experiment": {"out": str(work / "lastfm")},
        "prepare": {"adapter": "lastfm", "src": str(data_root / "lastfm-hetrec-2k")},
        "graph": asdict(gcfg),
    }
    full = _run(
        {
            "experiment": {"out": str(work / "douban-full")},
            "prepare": {"adapter": "douban", "src": str(data_root / "douban-music-book")},
        }
    )
    books = work / "data" / "douban-books"
    sub = downsample_books(full["prepare"], books, book_fraction, seed=0)
    douban = {
        "experiment": {"out": str(work / "douban"), "data": str(books)},
        "graph": {**asdict(gcfg), "encoder": "none"},
    }
    graphs = {name: _run(exp)["graph"] for name, exp in (("lastfm", lastfm), ("douban", douban))}
    manifests = {k: json.loads((g / "manifest.json").read_text()) for k, g in graphs.items()}
    info = {
        "seconds": time.perf_counter() - t0,
        "douban_downsample": sub,
        "lastfm_edges": manifests["lastfm"]["edge_types"],
        "douban_edges": manifests["douban"]["edge_types"],
        "lastfm_text_features": manifests["lastfm"]["stats"]["text_cache"],
    }
    print(f"[bench-hgnn] data + graphs ready in {info['seconds']:.1f}s", file=sys.stderr)
    return {"lastfm": lastfm, "douban": douban, "graphs": graphs, "info": info}


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    data_root = Path(args.data_root)
    work = Path(args.workdir)
    gcfg = GraphConfig(min_users=args.min_users, top_k=args.top_k)
    exps = prepare(data_root, work, gcfg, args.book_fraction)
    info = exps["info"]
    base = HGNNConfig(
        **{
            **PAPER_RECIPE,
            "fanout": args.fanout,
            "batch_size": args.batch_size,
            "hidden": args.hidden,
        },
        epochs=args.epochs,
        patience=10**9,  # no early stopping: every run does all its epochs
        eval_candidates=args.eval_candidates,
        max_val_edges=args.max_val_edges,
    )
    seeds = args.seeds
    results: dict[str, Any] = {"lastfm": {}, "douban": {}}

    # Last.fm: HGNN vs raw text vectors (one link type: balancing is a no-op)
    g = exps["graphs"]["lastfm"]
    cfg = HGNNConfig(**{**asdict(base), "seed": seeds[0]})
    if args.quick:
        cfg = replace(cfg, balance=args.quick_cap)  # int cap per link type: plain subsample
    results["lastfm"]["text"] = {"label": "MiniLM text (no training)", "val": text_baseline(g, cfg)}
    results["lastfm"]["hgnn"] = run(exps["lastfm"], cfg, "Last.fm HGNN")

    # Douban, books downsampled: unbalanced vs multi-link balanced
    g = exps["graphs"]["douban"]
    for seed in seeds:
        cfg = HGNNConfig(**{**asdict(base), "seed": seed})
        sizes = supervision_sizes(g, cfg)
        n_none = sum(sizes.values())
        n_min = sum(balanced_counts(sizes, "min").values())
        budget_epochs = max(cfg.epochs, math.ceil(cfg.epochs * n_none / n_min))
        if args.quick:
            budget_epochs = min(budget_epochs, 3 * cfg.epochs)
        variants = {
            "none": ("unbalanced", cfg.epochs, "none"),
            "min": ("multi-link min, same epochs", cfg.epochs, "min"),
            "min_budget": ("multi-link min, same edge budget", budget_epochs, "min"),
        }
        for key, (label, epochs, balance) in variants.items():
            c = HGNNConfig(**{**asdict(cfg), "epochs": epochs, "balance": balance})
            r = run(exps["douban"], c, f"Douban {label} (seed {seed})")
            r["supervision_per_epoch"] = (
                sizes if balance == "none" else balanced_counts(sizes, "min")
            )
            results["douban"].setdefault(key, {"label": label, "runs": []})["runs"].append(r)
    return {
        "config": {
            "data_root": str(args.data_root),
            "quick": args.quick,
            "seeds": seeds,
            "graph": {"min_users": args.min_users, "top_k": args.top_k},
            "book_fraction": args.book_fraction,
            "hgnn": {k: v for k, v in asdict(base).items() if k not in ("patience", "seed")},
        },
        "env": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "data": info,
        "results": results,
        "total_seconds": time.perf_counter() - t_start,
    }


def _agg(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(out: dict[str, Any]) -> str:
    """Markdown tables: quality per link type, then training runs."""
    res = out["results"]
    seeds = out["config"]["seeds"]
    lines = [
        "| data set | link type | model | val edges | AUC | Recall@10 | MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("text", "hgnn"):
        r = res["lastfm"][key]
        for lt, m in r["val"].items():
            lines.append(
                f"| Last.fm | {LINK_NAMES.get(lt, lt)} | {r['label'] if key == 'text' else 'HGNN'}"
                f" | {m['edges']:,} | {m['auc']:.3f} | {m['recall@10']:.3f} | {m['mrr']:.3f} |"
            )
    link_types = list(res["douban"]["none"]["runs"][0]["val"])
    for lt in link_types:
        for v in res["douban"].values():
            runs = v["runs"]
            edges = sum(r["val"][lt]["edges"] for r in runs)
            cells = [_agg([r["val"][lt][k] for r in runs]) for k in ("auc", "recall@10", "mrr")]
            lines.append(
                f"| Douban, books {out['config']['book_fraction']:.0%} | {LINK_NAMES.get(lt, lt)}"
                f" | HGNN, {v['label']} | {edges:,} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "| run | epochs | supervision edges per epoch | train s | edges/s |",
        "|---|---|---|---|---|",
    ]
    r = res["lastfm"]["hgnn"]
    per_epoch = r["train_edges"] / r["epochs"]
    lines.append(
        f"| Last.fm HGNN | {r['epochs']} | {per_epoch:,.0f} | {r['train_seconds']:.1f} | "
        f"**{r['edges_per_s']:,.0f}** |"
    )
    for v in res["douban"].values():
        runs = v["runs"]
        sup = runs[0]["supervision_per_epoch"]
        sup_s = " · ".join(f"{LINK_NAMES.get(k, k)} {n:,}" for k, n in sup.items())
        secs = statistics.mean(x["train_seconds"] for x in runs)
        eps = statistics.mean(x["edges_per_s"] for x in runs)
        lines.append(
            f"| Douban {v['label']} | {runs[0]['epochs']} | {sup_s} (seed {seeds[0]}) | "
            f"{secs:.1f} | {eps:,.0f} |"
        )
    lines.append("")
    lines.append(
        f"Total wall time {out['total_seconds'] / 60:.1f} min (data + graphs "
        f"{out['data']['seconds']:.0f} s); Douban values are mean ± sd over seeds {seeds}, "
        "val edges summed over seeds."
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default="../shared/data", help="folder of the real data")
    ap.add_argument(
        "--workdir",
        default=str(Path(tempfile.gettempdir()) / "audiograph-bench-hgnn"),
        help="prepared datasets, graphs and runs (outside the repository)",
    )
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default 3; quick: 1)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0-4; quick: 0")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--fanout", type=int, nargs="+", default=[10, 5])
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--eval-candidates", type=int, default=100)
    ap.add_argument("--max-val-edges", type=int, default=1000)
    ap.add_argument("--min-users", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--book-fraction", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, tiny budgets")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    args.epochs = args.epochs or (1 if args.quick else 3)
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    args.quick_cap = 5000  # Last.fm supervision edges per epoch in --quick mode
    out = benchmark(args)
    print(json.dumps(out, indent=2) if args.json else table(out))


if __name__ == "__main__":
    main()
