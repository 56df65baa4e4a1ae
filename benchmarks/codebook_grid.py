"""The Semantic ID codebook chosen on validation: levels × codebook size.

Per grid point, on the training side of a split (never its test part): the Semantic IDs
of one embedding space, then the generative model at its defaults (training stops on its
validation-loss plateau), then **validation recall@10** — the examples the run held out of
its own training (search pairs and each held-out user's last item), answered by beam
search, the target counted when it is in the top 10. Validation loss is reported too, but
it is not comparable across grid points (an ID of more levels has more tokens to
predict); recall is. Also reported: the share of items whose ID is unique before the
disambiguation code, epochs and seconds. Each point's run is kept under ``--workdir``
and reused (resume per point).

    python benchmarks/codebook_grid.py --data SPLIT/train --emb EMB_DIR --workdir WORK \\
        [--grid 1x256,2x64,2x256,3x64] [--save NAME]   # results/codebook-NAME.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from seeded import print_and_save

from audiograph.core.atomic import write_json
from audiograph.semantic_ids.assign import semantic_ids
from audiograph.semantic_ids.config import GenerativeConfig, SemanticIDConfig
from audiograph.semantic_ids.generate import decode, load_run
from audiograph.semantic_ids.generative_train import held_out_examples, train_generative

RESULTS = Path(__file__).resolve().parent / "results"
GRID = "1x256,2x64,2x256,3x64"


def validation_recall(run_dir: Path, k: int = 10) -> dict[str, float]:
    """Recall@``k`` per task of the run's held-out validation examples (one target each)."""
    run = load_run(run_dir)
    out = {}
    for task, (inputs, rows) in held_out_examples(run).items():
        answers = decode(run, inputs, k, 64)
        out[task] = float(np.mean([t in a for t, a in zip(rows.tolist(), answers, strict=True)]))
    return out


def one_point(args: argparse.Namespace, levels: int, size: int) -> dict[str, Any]:
    """SIDs, training and validation of one grid point (reused when done)."""
    work = Path(args.workdir) / f"{levels}x{size}"
    done = work / "point.json"
    if done.is_file():
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    sid_dir, run_dir = work / "sid", work / "gen"
    if not (sid_dir / "manifest.json").is_file():
        cfg = SemanticIDConfig(levels=levels, codebook_size=size, seed=args.seed)
        semantic_ids(args.emb, sid_dir, cfg, quiet=True)
    stats = json.loads((sid_dir / "manifest.json").read_text())["stats"]
    resume = (run_dir / "config.json").is_file()
    train_generative(args.data, sid_dir, run_dir, GenerativeConfig(seed=args.seed), resume=resume)
    metrics = pl.read_ndjson(run_dir / "metrics.jsonl")
    best = int(metrics["val_loss"].arg_min())
    recall = validation_recall(run_dir)
    point = {
        "levels": levels,
        "codebook_size": size,
        "unique_fraction": stats["unique_fraction"],
        "val_recall@10": recall,
        "val_recall@10_mean": float(np.mean(list(recall.values()))),
        "val_loss": float(metrics["val_loss"][best]),
        "epochs": metrics.height,
        "best_epoch": best,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json(done, point)
    return point


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a split's train side")
    ap.add_argument("--emb", required=True, help="embedding space of its items")
    ap.add_argument("--workdir", required=True, help="work folder (reused: resume)")
    ap.add_argument("--grid", default=GRID, help="LEVELSxSIZE,...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="what the data is, for the table")
    ap.add_argument("--save", default=None, metavar="NAME")
    args = ap.parse_args()
    grid = [tuple(int(x) for x in g.split("x")) for g in args.grid.split(",") if g.strip()]
    points = [one_point(args, lv, size) for lv, size in grid]
    doc = {
        "data": args.name or Path(args.data).name,
        "points": points,
        "chosen": max(points, key=lambda p: p["val_recall@10_mean"]),
        "command": f"--grid {args.grid} --seed {args.seed}"
        + (f" --save {args.save}" if args.save else ""),
    }
    saved = RESULTS / f"codebook-{args.save}.json" if args.save else None
    return print_and_save(doc, "codebook_table", saved)


if __name__ == "__main__":
    main()
