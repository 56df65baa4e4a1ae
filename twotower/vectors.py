"""Inputs of the two-tower stage, read from earlier stages' artifacts on disk.

* :func:`align_embeddings` — re-exported from :mod:`audiograph.core.embeddings` (the
  embeddings format's owner): an ``EMB_DIR``'s vectors row-aligned with a catalog.
* :func:`text_vectors` — the text encoder's vector of each catalog item (cached on disk).
* :func:`history_means` — per user, the weight-aware mean of item vectors of what the user
  interacted with, one block per ``(item_type, signal)``, plus counts: the user tower's
  input in the 2T-HGNN paper, and the LLM-KNN / HGNN-only baselines' user vector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from audiograph.core.embeddings import align_embeddings
from audiograph.core.text_encoder import DEFAULT_CACHE, TextEncoder, featurize_texts, item_texts


def text_vectors(
    items: pl.DataFrame,
    encoder_path: str | Path | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    progress: bool = False,
) -> np.ndarray:
    """float32 ``[len(items), dim]`` text vectors (title, description, tags as in the graph
    stage; zero rows for items without text), through the shared on-disk cache."""
    enc = TextEncoder(encoder_path)
    return featurize_texts(item_texts(items), enc, cache_dir, progress=progress)[0]


def history_means(
    interactions: pl.DataFrame,
    item_rows: pl.DataFrame,
    vectors: np.ndarray,
    users: pl.Series,
    weighted: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-user mean item vector of each ``(item_type, signal)`` block.

    Args:
        interactions: ``user_id, item_id, weight, signal`` (contract-normalized).
        item_rows: ``item_id, item_type, row`` — ``row`` indexes ``vectors``; interactions
            with items not listed here are ignored.
        vectors: float32 ``[N, dim]``.
        users: user ids; output row ``u`` belongs to ``users[u]``.
        weighted: weight each interaction by ``weight`` (else every interaction counts 1).

    Returns:
        ``(means, counts)`` keyed ``"item_type/signal"``: ``means[k]`` float32
        ``[len(users), dim]`` (zero rows for users without such interactions) and
        ``counts[k]`` float32 ``[len(users)]`` (number of interactions).
    """
    uidx = pl.DataFrame({"user_id": users, "u": np.arange(len(users), dtype=np.int64)})
    df = interactions.join(uidx, on="user_id").join(item_rows, on="item_id")
    vec = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    means, counts = {}, {}
    for (t, s), part in df.sort("item_type", "signal").group_by(
        ["item_type", "signal"], maintain_order=True
    ):
        u = torch.from_numpy(part["u"].to_numpy().copy())
        w = torch.from_numpy(
            part["weight"].to_numpy().astype(np.float32)
            if weighted
            else np.ones(part.height, np.float32)
        )
        rows = torch.from_numpy(part["row"].to_numpy().copy())
        total = torch.zeros(len(users), vec.shape[1]).index_add_(
            0, u, vec.index_select(0, rows) * w[:, None]
        )
        wsum = torch.zeros(len(users)).index_add_(0, u, w)
        key = f"{t}/{s}"
        means[key] = (total / wsum.clamp_min(1e-12)[:, None]).numpy()
        counts[key] = torch.zeros(len(users)).index_add_(0, u, torch.ones_like(w)).numpy()
    return means, counts


__all__ = ["align_embeddings", "history_means", "text_vectors"]
