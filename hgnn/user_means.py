"""User vectors as the mean item vector of what each user consumed (``embed-users``).

The cheap user vector of the 2T-HGNN paper's user tower input, in one block: per user, the
(weight-aware) mean of the item embeddings (an HGNN export, or any embeddings directory) of
the items in the user's interactions, L2-normalized. Written as a user-vectors directory
(:func:`audiograph.core.embeddings.write_user_vectors`), read by ``train-prefix``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.core.atomic import atomic_dir, claim_output, write_manifest
from audiograph.core.embeddings import read_embeddings, write_user_vectors
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION
from audiograph.graphs.contract import read_dataset

KIND = "user-vectors"


def user_means(
    interactions: pl.DataFrame, ids: pl.DataFrame, vectors: np.ndarray, weighted: bool = True
) -> tuple[pl.Series, np.ndarray]:
    """``(user_ids, means float32 [U, dim])``: per user of ``interactions`` (``user_id,
    item_id, weight``; first-seen order) the mean of the ``vectors`` rows of its items
    (``ids``: ``item_id, row``), weighted by ``weight`` when ``weighted``. Interactions
    with items without a vector are ignored; a user with none gets a zero row."""
    users = interactions["user_id"].unique(maintain_order=True)
    lut = pl.DataFrame({"user_id": users, "_u": np.arange(len(users), dtype=np.int64)})
    df = interactions.select("user_id", "item_id", "weight").join(lut, on="user_id")
    df = df.join(ids.select("item_id", "row"), on="item_id")
    w = df["weight"].to_numpy().astype(np.float64) if weighted else np.ones(df.height)
    u, r = df["_u"].to_numpy(), df["row"].to_numpy()
    sums = np.zeros((len(users), vectors.shape[1]), np.float64)
    np.add.at(sums, u, vectors[r] * w[:, None])
    total = np.bincount(u, weights=w, minlength=len(users))
    means = sums / np.where(total > 0, total, 1.0)[:, None]
    return users, means.astype(np.float32)


def export_user_means(
    emb_dir: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    weighted: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """Write the user vectors of :func:`user_means` of ``data_dir``'s interactions and the
    item vectors of ``emb_dir`` to ``out_dir`` (atomically); returns the manifest."""
    t0 = time.perf_counter()
    claim_output(out_dir, KIND, [emb_dir, data_dir])
    ids, vectors, _ = read_embeddings(emb_dir)
    ds = read_dataset(data_dir)
    if ds.interactions is None or ds.interactions.height == 0:
        raise ContractError(f"{data_dir}: no interactions to average item vectors over")
    users, means = user_means(ds.interactions, ids, vectors, weighted)
    empty = int((np.abs(means).sum(1) == 0).sum())
    manifest = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "source": "item-means",
        "emb_dir": str(Path(emb_dir).absolute()),
        "data_dir": str(Path(data_dir).absolute()),
        "weighted": weighted,
        "users": len(users),
        "users_without_vector_items": empty,
    }
    with atomic_dir(out_dir, KIND, [emb_dir, data_dir]) as tmp:
        manifest["dim"] = write_user_vectors(tmp, users, means)
        write_manifest(tmp, manifest, t0)
    if not quiet:
        print(
            f"[embed-users] {len(users):,} users ({empty} without an embedded item), "
            f"dim {manifest['dim']}, {manifest['seconds']:.1f}s -> {out_dir}"
        )
    return manifest
