"""Inductive embeddings for a text-only catalog: genre precision@10 of podcast neighbours.

A HGNN is trained on the synthetic catalog's graph (which has a ``podcast`` type with
text); the real Apple Podcasts catalog (no interactions) is then exported through
``audiograph export --catalog``: every show gets an embedding from its text alone. For
each show we take its 10 nearest shows (cosine) and report the fraction that share its
genre, against chance and against the raw MiniLM text vectors.

    python benchmarks/inductive_genre.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from audiograph.core.text_encoder import TextEncoder, featurize_texts, item_texts
from audiograph.graphs.adapters.podcasts import prepare_podcasts
from audiograph.hgnn.config import PAPER_RECIPE
from audiograph.hgnn.export import export_embeddings
from audiograph.pipeline.runner import read_experiment, run_experiment


def precision_at_k(vectors: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each row's ``k`` nearest rows (cosine, self excluded) with its label."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return float((labels[top] == labels[:, None]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    src = args.data_root / "podcast-catalog"
    if not src.is_dir():
        sys.exit(f"podcast catalog not found at {src} (--data-root)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ag-genre-"))
    t0 = time.perf_counter()
    exp = read_experiment(
        {  # the HGNN of the synthetic catalog (its whole graph)
            "experiment": {"out": str(work / "synth"), "seed": 0},
            "prepare": {"adapter": "synthetic"},
            "graph": {},
            "hgnn": {
                **PAPER_RECIPE,
                "epochs": args.epochs,
                "hidden": 64,
                "fanout": [10, 5],
                "batch_size": 512,
            },
        }
    )
    run = Path(run_experiment(exp, quiet=args.json)["hgnn"]["path"])
    prepare_podcasts(src, work / "podcasts")
    m = export_embeddings(run, work / "emb", catalog=work / "podcasts")
    ids = pl.read_parquet(work / "emb" / "ids.parquet")
    vec = np.load(work / "emb" / "embeddings.npy")
    items = pl.read_parquet(work / "podcasts" / "items.parquet")
    rows = ids.with_row_index("r").join(items.select("item_id", "genre"), on="item_id")
    labels = rows["genre"].to_numpy()
    hgnn = precision_at_k(vec[rows["r"].to_numpy()], labels)
    text, _, _ = featurize_texts(
        item_texts(items.join(rows.select("item_id"), on="item_id", maintain_order="right")),
        TextEncoder(),
        progress=False,
    )
    raw = precision_at_k(text, labels)
    counts = rows.group_by("genre").len()["len"].to_numpy().astype(float)
    chance = float((counts * (counts - 1)).sum() / (len(labels) * (len(labels) - 1)))
    result = {
        "shows": len(labels),
        "genres": len(counts),
        "inductive": m["inductive"],
        "precision@10": {"hgnn_inductive": hgnn, "minilm_text": raw, "chance": chance},
        "seconds": time.perf_counter() - t0,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['shows']:,} podcasts, {result['genres']} genres, embedded inductively "
        f"by a HGNN trained on the synthetic graph"
    )
    for name, value in result["precision@10"].items():
        print(f"  genre precision@10  {name:<16}{value:.3f}")
    print(f"  ({result['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
