"""The generative model's training step, before and after issue 38's speed work, in one
run: examples/s per epoch of ``train-generative`` on the same data and Semantic IDs.

* ``before``: the step as it was — float32, torch's default (for-each) AdamW, batches of
  shuffled examples (padded to the longest input of the batch), the tokenizer's whole
  vocabulary in the embedding table;
* ``after``: the product's defaults — ``precision = "auto"`` (bf16 matrix products where
  the CPU has them), fused AdamW, batches cut from length-sorted windows, only the text
  tokens of the training queries in the table.

Both train from the same seed for the same epochs (validation and early stopping off, so
every epoch is timed). Each variant writes its run under ``--workdir`` and is reused by a
rerun (resume per variant).

    python benchmarks/generative_speed.py --data DATA_DIR --sid SID_DIR --workdir WORK \\
        [--epochs 6] [--save NAME]     # results/generative_speed-NAME.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from seeded import print_and_save

from audiograph.semantic_ids import generative_train
from audiograph.semantic_ids.config import GenerativeConfig

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("before", "after")


@contextlib.contextmanager
def step_as(variant: str) -> Iterator[dict[str, Any]]:
    """The training step of ``variant``: ``before`` swaps the fused AdamW for torch's
    default, length-sorted windows for plain shuffled batches (one batch a window) and the
    query tokens for the whole vocabulary."""
    g = generative_train
    saved = g.adamw, g.BUCKET, g.query_text_ids
    if variant == "before":
        g.adamw = lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        g.BUCKET = 1
        g.query_text_ids = lambda tok, queries, max_tokens: ()
    try:
        yield {"precision": "fp32" if variant == "before" else "auto"}
    finally:
        g.adamw, g.BUCKET, g.query_text_ids = saved


def run_variant(args: argparse.Namespace, variant: str) -> list[dict[str, Any]]:
    """Train ``variant`` (or reuse its finished run) → its per-epoch metrics."""
    out = Path(args.workdir) / variant
    metrics = out / "metrics.jsonl"
    if metrics.is_file():
        rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
        if len(rows) == args.epochs:
            return rows
    with step_as(variant) as changes:
        cfg = GenerativeConfig(epochs=args.epochs, val_examples=0, seed=args.seed, **changes)
        generative_train.train_generative(
            args.data, args.sid, out, cfg, resume=metrics.is_file(), quiet=args.quiet
        )
    return [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset directory (a split's train side)")
    ap.add_argument("--sid", required=True, help="Semantic ID directory")
    ap.add_argument("--workdir", required=True, help="work folder (reused: resume)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="what the data is, for the table")
    ap.add_argument("--save", default=None, metavar="NAME")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    runs = {v: run_variant(args, v) for v in VARIANTS}
    doc = {
        "data": args.name or Path(args.data).name,
        "epochs": args.epochs,
        "variants": {
            v: {
                "examples_per_s": [r["examples_per_s"] for r in rows],
                "train_loss": [round(r["train_loss"], 4) for r in rows],
                "seconds": round(sum(r["seconds"] for r in rows), 1),
                "examples": rows[0]["examples"],
            }
            for v, rows in runs.items()
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": torch.get_num_threads(),
        "command": f"--epochs {args.epochs} --seed {args.seed}"
        + (f" --save {args.save}" if args.save else ""),
    }
    saved = RESULTS / f"generative_speed-{args.save}.json" if args.save else None
    return print_and_save(doc, "generative_speed_table", saved)


if __name__ == "__main__":
    main()
