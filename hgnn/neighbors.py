"""``audiograph neighbors``: nearest items of an embeddings export, with titles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from audiograph.core.ann import search
from audiograph.core.embeddings import read_embeddings
from audiograph.core.errors import ContractError
from audiograph.graphs.contract import has_items, read_items


def _titles(sources: list[str | Path | None]) -> pl.DataFrame | None:
    """``item_id, title`` from the first dataset dirs (of ``sources``) that have items."""
    frames = []
    for src in sources:
        if src is not None and has_items(src):
            frames.append(read_items(src).select("item_id", "title"))
    return (
        pl.concat(frames).unique("item_id", keep="first", maintain_order=True) if frames else None
    )


def nearest_neighbors(
    emb_dir: str | Path, item_id: str, k: int = 10, catalog: str | Path | None = None
) -> pl.DataFrame:
    """Cosine top-``k`` of ``item_id`` (itself excluded; exact, or through the export's IVF
    index) → ``item_id, item_type, score`` (+ ``title`` from ``catalog``, else from the
    export's catalog/dataset when found), sorted by score, descending."""
    emb_dir = Path(emb_dir)
    ids, mm, manifest = read_embeddings(emb_dir, mmap=True)
    if k < 1:
        raise ContractError(f"k must be >= 1, got {k}")
    hit = ids.filter(pl.col("item_id") == item_id)
    if not hit.height:
        raise ContractError(f"{emb_dir}: item_id {item_id!r} not in embeddings")
    row = int(hit["row"][0])
    scores, rows = search(mm, np.array(mm[row : row + 1]), k + 1, emb_dir, manifest.get("ann"))
    keep = (rows[0] != row) & (rows[0] >= 0)
    top_s, top_r = scores[0][keep][:k], rows[0][keep][:k]
    out = ids[top_r.tolist()].with_columns(score=pl.Series(top_s, dtype=pl.Float32))
    out = out.sort(["score", "row"], descending=[True, False]).select(
        "item_id", "item_type", "score"
    )
    sources = (
        [catalog] if catalog is not None else [manifest.get("catalog"), manifest.get("dataset")]
    )
    titles = _titles(sources)
    if titles is not None:
        out = out.join(titles, on="item_id", how="left", maintain_order="left")
    return out
