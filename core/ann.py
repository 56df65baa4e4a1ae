"""Nearest-neighbour search over L2-normalized vectors: exact or a faiss IVF index.

Small catalogs (fewer than :data:`EXACT_MAX` rows) are searched exactly with a torch
matmul + top-k; larger ones get a faiss ``IndexIVFFlat`` (inner product = cosine on
normalized rows) with ``nlist = sqrt(N)`` lists trained by seeded k-means on a sample of
``40·nlist`` rows.
The index file (``index.faiss``) is faiss's own open binary format (``faiss.read_index``;
no pickle). Every search returns ``(scores [Q, k], rows [Q, k])`` in the list order of
:mod:`audiograph.core.ranking`: by score, descending, equal scores by row (the lower
first), a NaN score last as ``-inf`` (IVF may pad with row -1 when fewer than k vectors
sit in the probed lists).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiograph.core.ranking import ordered, top_k

EXACT_MAX = 100_000
INDEX_FILE = "index.faiss"


def build_index(
    vectors: np.ndarray, out_dir: str | Path, kind: str = "auto", seed: int = 0, nprobe: int = 16
) -> dict[str, Any]:
    """Write an index for ``vectors`` (float32 ``[N, d]``) into ``out_dir`` when useful.

    Args:
        kind: ``"auto"`` (IVF from :data:`EXACT_MAX` rows on, else exact), ``"exact"`` or
            ``"ivf"``.
        seed: seeds the training sample and faiss's k-means.
        nprobe: lists visited per query (stored for :func:`search`).

    Returns:
        the index description for a manifest: ``{"index": "exact"}`` or
        ``{"index": "ivf-flat", "file", "nlist", "nprobe", "metric": "inner_product"}``.
    """
    if kind not in ("auto", "exact", "ivf"):
        raise ValueError(f"index kind must be auto | exact | ivf, got {kind!r}")
    n, d = vectors.shape
    if kind == "exact" or (kind == "auto" and n < EXACT_MAX) or n < 2:
        return {"index": "exact"}
    import faiss

    nlist = max(1, min(int(math.sqrt(n)), n // 40))
    sample = np.random.default_rng(seed).choice(n, size=min(n, 40 * nlist), replace=False)
    train = np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(train)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(Path(out_dir) / INDEX_FILE))
    return {
        "index": "ivf-flat",
        "file": INDEX_FILE,
        "nlist": nlist,
        "nprobe": nprobe,
        "metric": "inner_product",
    }


def search(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    index_dir: str | Path | None = None,
    spec: dict[str, Any] | None = None,
    chunk: int = 262144,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``vectors`` (``[N, d]``, may be a memmap) for each query
    (``[Q, d]``) by inner product → ``(scores float32 [Q, k'], rows int64 [Q, k'])``,
    ``k' = min(k, N)``. Uses the IVF index of ``index_dir`` when ``spec`` (the
    :func:`build_index` description) names one, else an exact chunked scan."""
    k = min(k, len(vectors))
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if spec is not None and spec.get("index") == "ivf-flat" and index_dir is not None:
        import faiss

        index = faiss.read_index(str(Path(index_dir) / spec["file"]))
        index.nprobe = int(spec.get("nprobe", 16))
        scores, rows = index.search(q, k)
        s, r = ordered(torch.from_numpy(scores), torch.from_numpy(rows.astype(np.int64)), k)
        return s.numpy(), r.numpy()
    qt = torch.from_numpy(q)
    best_s = torch.full((len(q), 0), -math.inf)
    best_r = torch.zeros((len(q), 0), dtype=torch.long)
    for lo in range(0, len(vectors), chunk):
        block = torch.from_numpy(np.array(vectors[lo : lo + chunk], np.float32))  # writable
        s, r = top_k(qt @ block.T, k)
        best_s, best_r = ordered(torch.cat([best_s, s], 1), torch.cat([best_r, r + lo], 1), k)
    return best_s.numpy(), best_r.numpy()
