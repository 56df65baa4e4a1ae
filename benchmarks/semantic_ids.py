"""Semantic IDs benchmark: RQ-KMeans fit + encode + disambiguation, audiograph vs faiss.

Data: ``n`` seeded synthetic unit vectors with a two-level topic structure (64 coarse
topics × 64 sub-topics + isotropic noise). Ours (:mod:`audiograph.semantic_ids.rqkmeans`): fit on a
sample of 256 rows per code, then every row encoded in chunks. Peer (when faiss imports):
``faiss.Kmeans`` per level (same sample size, same iterations, faiss's random init) on
the residuals, every row assigned with a flat index; the same :func:`disambiguate`
afterwards. Both in the same process and run.

    python benchmarks/semantic_ids.py                    # 1M × 128, 2 × 256: table
    python benchmarks/semantic_ids.py --n 100000 --json  # one JSON object
    python benchmarks/semantic_ids.py --device cuda      # ours on GPU (faiss stays on CPU)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from audiograph.semantic_ids.rqkmeans import (
    code_stats,
    disambiguate,
    encode_rq,
    fit_rq,
    reconstruction_mse,
)


def synthetic_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """float32 ``[n, dim]`` unit vectors: coarse topic + 0.5 · sub-topic + 0.35 · noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(64, dim, generator=g)
    fine = torch.randn(64 * 64, dim, generator=g)
    sub = torch.randint(64 * 64, (n,), generator=g)
    x = torch.randn(n, dim, generator=g).mul_(0.35)
    x += coarse[sub // 64]
    x += 0.5 * fine[sub]
    x /= x.norm(dim=1, keepdim=True)
    return x.numpy()


def run_ours(x: np.ndarray, levels: int, k: int, iters: int, device: str) -> dict:
    t0 = time.perf_counter()
    books = fit_rq(x, levels, k, iters, seed=0, device=device)
    _sync(device)
    t1 = time.perf_counter()
    codes = encode_rq(x, books)
    t2 = time.perf_counter()
    return _finish("audiograph", x, codes, books, k, t1 - t0, t2 - t1, device)


def run_faiss(x: np.ndarray, levels: int, k: int, iters: int) -> dict | None:
    try:
        import faiss
    except ImportError:
        return None
    n, d = x.shape
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(n, 256 * k), replace=False))
    r = np.ascontiguousarray(x[sample])
    books = []
    for level in range(levels):
        km = faiss.Kmeans(d, k, niter=iters, seed=level, max_points_per_centroid=256)
        km.train(r)
        books.append(km.centroids.copy())
        r -= km.centroids[km.index.search(r, 1)[1][:, 0]]
    t1 = time.perf_counter()
    codes = np.empty((n, levels), np.int64)
    indexes = [faiss.IndexFlatL2(d) for _ in books]
    for index, c in zip(indexes, books, strict=True):
        index.add(c)
    for lo in range(0, n, 65536):
        rb = np.array(x[lo : lo + 65536])
        for level, (index, c) in enumerate(zip(indexes, books, strict=True)):
            idx = index.search(rb, 1)[1][:, 0]
            codes[lo : lo + len(rb), level] = idx
            rb -= c[idx]
    t2 = time.perf_counter()
    tensors = [torch.from_numpy(c) for c in books]
    return _finish("faiss-kmeans", x, torch.from_numpy(codes), tensors, k, t1 - t0, t2 - t1)


def _finish(name, x, codes, books, k, fit_s, encode_s, device="cpu") -> dict:
    t0 = time.perf_counter()
    ids = disambiguate(codes)
    dis_s = time.perf_counter() - t0
    stats = code_stats(codes, k)
    return {
        "impl": name,
        "device": device,
        "fit_s": fit_s,
        "encode_s": encode_s,
        "disambiguate_s": dis_s,
        "total_s": fit_s + encode_s + dis_s,
        "unique_fraction": stats["unique_fraction"],
        "max_extra_code": int(ids[:, -1].max()),
        **reconstruction_mse(x, codes, [b.cpu() for b in books]),
    }


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--levels", type=int, default=2)
    ap.add_argument("--codebook-size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-peer", action="store_true", help="skip the faiss peer")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    x = synthetic_vectors(args.n, args.dim)
    gen_s = time.perf_counter() - t0
    rows = [run_ours(x, args.levels, args.codebook_size, args.iters, args.device)]
    if not args.no_peer:
        peer = run_faiss(x, args.levels, args.codebook_size, args.iters)
        if peer is not None:
            rows.append(peer)
    base = {
        "n": args.n,
        "dim": args.dim,
        "levels": args.levels,
        "k": args.codebook_size,
        "iters": args.iters,
        "torch_threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps({**base, "generate_s": gen_s, "rows": rows}, indent=2))
        return
    print(
        f"n={args.n:,} dim={args.dim} levels={args.levels} k={args.codebook_size}"
        f" iters={args.iters} (data generated in {gen_s:.1f}s)"
    )
    head = "| impl | device | fit s | encode s | disamb. s | total s | unique | MSE | rel. err |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(
            f"| {r['impl']} | {r['device']} | {r['fit_s']:.2f} | {r['encode_s']:.2f} |"
            f" {r['disambiguate_s']:.2f} | {r['total_s']:.2f} | {r['unique_fraction']:.4f} |"
            f" {r['mse']:.3e} | {r['relative_error']:.4f} |"
        )


if __name__ == "__main__":
    main()
