"""Residual k-means (RQ-KMeans) in plain torch, on CPU or CUDA.

Level ``l`` of a residual quantizer is a k-means codebook ``[k, d]`` fit on what the
levels before it left over: ``r_0 = x``, ``code_l = argmin_j ||r_l - C_l[j]||²``,
``r_{l+1} = r_l - C_l[code_l]``; an item's Semantic ID is its tuple of codes and
``x̂ = Σ_l C_l[code_l]``.

* :func:`kmeans` — seeded k-means++ initialisation, then Lloyd iterations; squared
  distances as ``||x||² - 2 x·c + ||c||²`` (one matmul per chunk of rows, so memory stays
  at ``chunk × k`` floats); empty clusters are re-seeded from the points farthest from
  their centroid (deterministic: ties go to the lower row).
* :func:`fit_rq` — one seeded sample of rows (``sample_per_code · k``, the usual
  256 per code) is drawn once and every level is fit on that sample's residuals, so the
  fit costs the same for 10⁵ or 10⁸ items; :func:`encode_rq` then assigns every row in
  chunks (matmul + argmin per level).
* :func:`disambiguate` appends a last code so every ID is unique (TIGER/GRID style) and
  :func:`code_stats` describes collisions and codebook usage.

All randomness comes from one CPU ``torch.Generator`` seeded by ``seed``: the same seed
gives the same codebooks and codes on the same device (CUDA cluster sums use a one-hot
matmul rather than float atomics so that they repeat too); CPU and CUDA results may
differ in the last bits, hence in a few codes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

ArrayLike = np.ndarray | torch.Tensor
CHUNK = 16384
INIT_PER_CODE = 32  # k-means++ runs on at most this many rows per centroid


def kmeans(
    x: ArrayLike,
    k: int,
    iters: int = 20,
    seed: int = 0,
    device: str | torch.device = "cpu",
    sample: int | None = None,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """k-means++ then Lloyd: centroids float32 ``[k, d]`` (on ``device``) of ``x`` ``[N, d]``.

    Args:
        x: float32 ``[N, d]`` rows (numpy or torch, any device), ``N >= k``.
        k: number of clusters.
        iters: at most this many Lloyd iterations (stops early once no row moves).
        seed: seeds the row sample, the k-means++ draws and nothing else.
        device: where the distances are computed.
        sample: train on a seeded sample of this many rows (at least ``k``) instead of all.
        chunk: rows per distance block (memory ``chunk × k`` floats).
    """
    g = torch.Generator().manual_seed(seed)
    xt = _sample(x, None if sample is None else max(int(sample), k), g, device)
    return _kmeans(xt, k, iters, g, chunk)[0]


def fit_rq(
    x: ArrayLike,
    levels: int = 2,
    codebook_size: int = 256,
    iters: int = 20,
    seed: int = 0,
    device: str | torch.device = "cpu",
    sample_per_code: int | None = 256,
    chunk: int = CHUNK,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Fit ``levels`` residual codebooks, each float32 ``[codebook_size, d]`` on ``device``.

    Args:
        x: float32 ``[N, d]``, ``N >= codebook_size``.
        levels: number of codebooks (code positions of an ID).
        codebook_size: ``k``, codes per level.
        iters: Lloyd iterations per level.
        seed: seeds the training sample and every level's k-means++.
        device: where the fit runs.
        sample_per_code: fit on a seeded sample of ``sample_per_code · k`` rows (one sample
            for all levels; level ``l`` sees its residuals after levels ``< l``);
            ``None`` = all rows.
        chunk: rows per distance block.
        progress: show a tqdm bar over levels.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    g = torch.Generator().manual_seed(seed)
    size = None if sample_per_code is None else sample_per_code * codebook_size
    r = _sample(x, size, g, device).clone()
    books = []
    for _ in tqdm(range(levels), desc="rq-kmeans levels", disable=not progress):
        c, assign = _kmeans(r, codebook_size, iters, g, chunk)
        r -= c[assign]
        books.append(c)
    return books


def encode_rq(
    x: ArrayLike,
    codebooks: list[torch.Tensor] | torch.Tensor,
    chunk: int = CHUNK,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Codes int64 ``[N, levels]`` (on CPU) of ``x`` float32 ``[N, d]`` under ``codebooks``
    (``levels × [k, d]``): greedy residual assignment, ``chunk`` rows at a time, on
    ``device`` (default: the codebooks' device)."""
    books = _books(codebooks, device)
    dev = books[0].device
    c_sq = [(c * c).sum(1) for c in books]
    codes = torch.empty((len(x), len(books)), dtype=torch.long)
    for lo in range(0, len(x), chunk):
        r = _as_tensor(x[lo : lo + chunk], dev).clone()
        for level, c in enumerate(books):
            idx = _nearest(r, c, c_sq[level])
            codes[lo : lo + len(r), level] = idx.cpu()
            r -= c[idx]
    return codes


def decode_rq(codes: ArrayLike, codebooks: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Reconstruction float32 ``[N, d]`` = ``Σ_l codebooks[l][codes[:, l]]`` of codes int64
    ``[N, L]`` (``L <= levels``; extra columns such as a disambiguation code are not
    allowed), on the codebooks' device."""
    books = _books(codebooks, None)
    c = torch.as_tensor(codes, dtype=torch.long).to(books[0].device)
    if c.ndim != 2 or c.shape[1] > len(books):
        raise ValueError(f"codes must be [N, <= {len(books)}], got {tuple(c.shape)}")
    out = torch.zeros((c.shape[0], books[0].shape[1]), device=c.device)
    for level in range(c.shape[1]):
        out += books[level][c[:, level]]
    return out


def reconstruction_mse(
    x: ArrayLike,
    codes: ArrayLike,
    codebooks: list[torch.Tensor] | torch.Tensor,
    chunk: int = CHUNK,
) -> dict[str, float]:
    """Quality of ``decode_rq(codes)`` against ``x`` ``[N, d]``: ``{"mse": mean squared
    error per coordinate, "relative_error": Σ||x - x̂||² / Σ||x||²}``."""
    books = _books(codebooks, None)
    err = total = 0.0
    for lo in range(0, len(x), chunk):
        xb = _as_tensor(x[lo : lo + chunk], books[0].device)
        rec = decode_rq(codes[lo : lo + chunk], books)
        err += float(((xb - rec) ** 2).sum(dtype=torch.float64))
        total += float((xb * xb).sum(dtype=torch.float64))
    elems = len(x) * books[0].shape[1]
    return {
        "mse": err / max(elems, 1),
        "relative_error": err / total if total > 0 else 0.0,
    }


def disambiguate(codes: ArrayLike) -> torch.Tensor:
    """Codes int64 ``[N, L]`` → int64 ``[N, L + 1]``: the first ``L`` columns unchanged, the
    last = rank of the row among the rows with the same ``L``-tuple, in row order (0 for
    the first), so every row's tuple is unique."""
    c = torch.as_tensor(codes, dtype=torch.long).cpu()
    if c.ndim != 2:
        raise ValueError(f"codes must be [N, L], got {tuple(c.shape)}")
    rank = torch.from_numpy(_groups(c)[1])
    return torch.cat([c, rank[:, None]], 1)


def code_stats(codes: ArrayLike, codebook_size: int) -> dict[str, Any]:
    """Collision and usage statistics of codes int64 ``[N, L]`` (before disambiguation).

    Returns ``count``, ``unique_fraction`` (distinct tuples / N), ``collision_rate``
    (fraction of rows whose tuple some other row shares), ``max_extra_code`` (largest
    disambiguation code = largest group size − 1), ``max_group_size`` and per level
    ``usage`` (fraction of the ``codebook_size`` codes used) and ``entropy_bits`` (of the
    code distribution; ``log2(codebook_size)`` at most). The reconstruction error is the
    caller's (:func:`reconstruction_mse`).
    """
    c = torch.as_tensor(codes, dtype=torch.long).cpu()
    n = c.shape[0]
    if n == 0:
        return {
            "count": 0,
            "unique_fraction": 1.0,
            "collision_rate": 0.0,
            "max_extra_code": 0,
            "max_group_size": 0,
            "levels": [],
        }
    sizes = torch.bincount(torch.from_numpy(_groups(c)[0]))
    per_level = []
    for level in range(c.shape[1]):
        counts = torch.bincount(c[:, level], minlength=codebook_size).double()
        p = counts[counts > 0] / n
        per_level.append(
            {
                "usage": int((counts > 0).sum()) / codebook_size,
                "entropy_bits": float(-(p * p.log2()).sum()) + 0.0,
            }
        )
    return {
        "count": n,
        "unique_fraction": len(sizes) / n,
        "collision_rate": int(sizes[sizes > 1].sum()) / n,
        "max_extra_code": int(sizes.max()) - 1,
        "max_group_size": int(sizes.max()),
        "levels": per_level,
    }


# --- internals -----------------------------------------------------------------------


def _as_tensor(x: ArrayLike, device: str | torch.device) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    t = torch.as_tensor(x).to(device=device, dtype=torch.float32)
    if t.ndim != 2:
        raise ValueError(f"expected a [N, d] matrix, got shape {tuple(t.shape)}")
    return t


def _sample(
    x: ArrayLike, size: int | None, g: torch.Generator, device: str | torch.device
) -> torch.Tensor:
    """``x`` on ``device``, or a seeded sample of ``size`` of its rows (in row order)."""
    if size is None or size >= len(x):
        return _as_tensor(x, device)
    rows = torch.randperm(len(x), generator=g)[:size].sort().values
    if isinstance(x, np.ndarray):
        return _as_tensor(x[rows.numpy()], device)
    return _as_tensor(x[rows.to(x.device)], device)


def _books(codebooks: list[torch.Tensor] | torch.Tensor, device) -> list[torch.Tensor]:
    books = [torch.as_tensor(c, dtype=torch.float32) for c in codebooks]
    if not books:
        raise ValueError("no codebooks")
    return [c.to(device) for c in books] if device is not None else books


def _scores(x: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor) -> torch.Tensor:
    """``||c||² - 2 x·c`` ``[n, k]``: the squared distance up to the per-row ``||x||²``."""
    return torch.addmm(c_sq, x, c.T, beta=1.0, alpha=-2.0)


def _nearest(x: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor) -> torch.Tensor:
    return _scores(x, c, c_sq).argmin(1)


def _assign(
    x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(nearest centroid [n], squared distance to it [n])`` of rows ``x`` (squared norms
    ``x_sq``), ``chunk`` rows at a time."""
    c_sq = (c * c).sum(1)
    idx = torch.empty(len(x), dtype=torch.long, device=x.device)
    dist = torch.empty(len(x), device=x.device)
    for lo in range(0, len(x), chunk):
        xb = x[lo : lo + chunk]
        best = _scores(xb, c, c_sq).min(1)
        idx[lo : lo + len(xb)] = best.indices
        dist[lo : lo + len(xb)] = (best.values + x_sq[lo : lo + chunk]).clamp_min_(0)
    return idx, dist


def _cluster_sums(x: torch.Tensor, idx: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Per-cluster sums ``[k, d]`` of the rows of ``x``: ``index_add_`` on CPU, a one-hot
    matmul per chunk on CUDA (whose ``index_add_`` uses float atomics: not repeatable)."""
    if x.device.type == "cpu":
        return torch.zeros((k, x.shape[1]), dtype=x.dtype).index_add_(0, idx, x)
    sums = torch.zeros((k, x.shape[1]), dtype=x.dtype, device=x.device)
    for lo in range(0, len(x), chunk):
        ib = idx[lo : lo + chunk]
        onehot = torch.zeros((k, len(ib)), dtype=x.dtype, device=x.device)
        onehot[ib, torch.arange(len(ib), device=x.device)] = 1
        sums += onehot @ x[lo : lo + chunk]
    return sums


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding on a seeded subsample of ``INIT_PER_CODE · k`` rows: each next
    centroid drawn with probability ∝ squared distance to the nearest centroid so far
    (uniform when every row sits on a centroid)."""
    if len(x) > INIT_PER_CODE * k:
        rows = torch.randperm(len(x), generator=g)[: INIT_PER_CODE * k].sort().values
        x = x[rows.to(x.device)]
    n = len(x)
    x_sq = (x * x).sum(1)
    chosen = [int(torch.randint(n, (1,), generator=g))]
    first = x[chosen[0]]
    d2 = (x_sq - 2 * (x @ first) + first @ first).clamp_min_(0)
    for _ in range(1, k):
        cdf = d2.double().cumsum(0)
        u = float(torch.rand((), generator=g, dtype=torch.float64))
        total = float(cdf[-1])
        if total > 0:
            at = torch.tensor([u * total], dtype=cdf.dtype, device=cdf.device)
            i = min(int(torch.searchsorted(cdf, at)), n - 1)
        else:
            i = int(u * n) % n
        chosen.append(i)
        c = x[i]
        d2 = torch.minimum(d2, (x_sq - 2 * (x @ c) + c @ c).clamp_min_(0))
    return x[torch.tensor(chosen, device=x.device)].clone()


def _kmeans(
    x: torch.Tensor, k: int, iters: int, g: torch.Generator, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centroids [k, d], assignment of each row of x [n])``."""
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), got {k}")
    c = _kmeans_pp(x, k, g)
    x_sq = (x * x).sum(1)
    idx, dist = _assign(x, x_sq, c, chunk)
    for _ in range(iters):
        counts = torch.bincount(idx, minlength=k)
        sums = _cluster_sums(x, idx, k, chunk)
        c = sums / counts.clamp_min(1)[:, None].to(sums.dtype)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            # re-seed from the farthest rows (stable sort: ties go to the lower row)
            far = torch.sort(dist, descending=True, stable=True).indices[: len(empty)]
            c[empty] = x[far]
        new_idx, dist = _assign(x, x_sq, c, chunk)
        moved = bool((new_idx != idx).any())
        idx = new_idx
        if not moved and not len(empty):
            break
    return c, idx


def _groups(c: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(group id [N], rank in group [N])`` of each row's tuple: equal tuples share a dense
    id; the rank counts the earlier rows with the same tuple. One stable sort."""
    n = c.shape[0]
    if bool((c < 0).any()):
        raise ValueError("codes must be >= 0")
    a = c.numpy()
    base = int(a.max()) + 1 if a.size else 1
    if a.shape[1] * math.log2(max(base, 2)) < 62:
        key = np.zeros(n, np.int64)
        for level in range(a.shape[1]):
            key = key * base + a[:, level]
    else:
        key = np.unique(a, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    new = np.ones(n, bool)
    new[1:] = ks[1:] != ks[:-1]
    pos = np.arange(n)
    starts = np.maximum.accumulate(np.where(new, pos, 0))
    gid, rank = np.empty(n, np.int64), np.empty(n, np.int64)
    gid[order] = np.cumsum(new) - 1
    rank[order] = pos - starts
    return gid, rank
