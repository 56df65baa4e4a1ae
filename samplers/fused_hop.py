"""One hop of one edge type, fused into a numba kernel (CPU, uniform sampling).

The torch path of :class:`~audiograph.samplers.neighbor.NeighborSampler` spends most of a
batch in gathers (``index_select``) and in the scatter that finds first occurrences; here
one pass over the frontier samples, drops excluded edges, gives local ids to new sources
and writes the edges. It draws the same random numbers from the caller's generator and
takes the same decisions as the torch path (Floyd's algorithm on ``u [R, k]`` float64,
rows taking all their neighbours first), so its output is identical, element for element.
The sampling and gathers run in parallel over the frontier, on as many threads as there
are free cores (:mod:`~audiograph.samplers.threads`; the serial kernel when one is free or
the frontier is small); numbering the new sources runs in one thread (first-occurrence
order).
"""

from __future__ import annotations

import importlib
import threading

import numba
import numpy as np
import torch

from audiograph.samplers.adjacency import Adjacency
from audiograph.samplers.threads import FREE_CORES


@numba.njit(cache=True)
def _count_sampled_rows(colptr, dst, k):  # pragma: no cover (compiled)
    n = 0
    for i in range(dst.shape[0]):
        if k >= 0 and colptr[dst[i] + 1] - colptr[dst[i]] > k:
            n += 1
    return n


def _hop(colptr, row, perm, dst, k, u, local, count, excl, n_dst):  # pragma: no cover
    n = dst.shape[0]
    off = np.empty(n, np.int64)  # first output position of each frontier row
    m = 0
    for i in range(n):  # rows taking all their neighbours first, in order
        d = colptr[dst[i] + 1] - colptr[dst[i]]
        if k < 0 or d <= k:
            off[i] = m
            m += d
    big = m
    for i in range(n):  # then the sampled rows, k positions each
        d = colptr[dst[i] + 1] - colptr[dst[i]]
        if not (k < 0 or d <= k):
            off[i] = m
            m += k
    slot = np.empty(m, np.int64)
    src = np.empty(m, np.int64)  # -1: excluded
    owner = np.empty(m, np.int64)
    eid = np.empty(m, np.int64)
    for i in numba.prange(n):  # sampling and gathers: independent per row
        start = colptr[dst[i]]
        d = colptr[dst[i] + 1] - start
        full = k < 0 or d <= k
        b = (off[i] - big) // max(k, 1)  # this row's line of u
        for step in range(d if full else k):
            p = off[i] + step
            if full:
                slot[p] = start + step
            else:  # Floyd: draw t in 0..j, take j when t was already taken
                j = d - k + step
                t = min(np.int64(u[b, step] * (j + 1)), j)
                for q in range(step):
                    if slot[off[i] + q] == start + t:
                        t = j
                        break
                slot[p] = start + t
            s = row[slot[p]]
            if excl.shape[0]:
                key = s * n_dst + dst[i]
                pos = np.searchsorted(excl, key)
                if pos < excl.shape[0] and excl[pos] == key:
                    s = -1
            src[p] = s
            owner[p] = i
            eid[p] = perm[slot[p]]
    rows = np.empty(m, np.int64)
    which = np.empty(m, np.int64)
    eids = np.empty(m, np.int64)
    new = np.empty(m, np.int64)
    e = 0
    n_new = 0
    for p in range(m):  # local ids in first-occurrence order: sequential
        s = src[p]
        if s < 0:
            continue
        loc = local[s]
        if loc < 0:
            loc = count
            local[s] = loc
            count += 1
            new[n_new] = s
            n_new += 1
        rows[e] = loc
        which[e] = owner[p]
        eids[e] = eid[p]
        e += 1
    return rows[:e], which[:e], eids[:e], new[:n_new], count


_hop_parallel = numba.njit(parallel=True, cache=True)(_hop)
_hop_serial = numba.njit(cache=True)(_hop)  # prange runs as range


def _thread_safe_layer() -> bool:
    """Whether numba's threading layer takes parallel kernels from two threads at once
    (tbb, omp); the workqueue layer does not, and the sampler's prefetch thread runs its
    kernels while the training step runs the max-pool's."""
    if numba.config.THREADING_LAYER == "workqueue":
        return False
    for pool in ("tbbpool", "omppool"):
        try:
            importlib.import_module(f"numba.np.ufunc.{pool}")
            return True
        except ImportError:
            continue
    return False


PARALLEL_ANY_THREAD = _thread_safe_layer()
PARALLEL_ROWS = 256  # smaller frontiers run the serial kernel


def fused_hop(
    adj: Adjacency,
    dst: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
    local: torch.Tensor,
    count: int,
    exclude: torch.Tensor | None,
    num_dst: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Sample up to ``k`` in-neighbours of each ``dst`` node (``-1``: all) and number the
    sources not seen before.

    Args:
        adj: CPU adjacency of the edge type.
        dst: frontier node ids ``[N]`` (int64).
        local: the source type's global → local id table ``[n_src]`` (``-1``: unseen); new
            sources get ``count, count + 1, ...`` in first-occurrence order, in place.
        exclude: keys ``src * num_dst + dst`` of edges never to sample, sorted ascending
            (or None).

    Returns:
        ``(rows, which, e_id, new, count)``: per kept edge the source's local id, the
        position in ``dst`` of its destination and its original edge id (``[M]`` each), the
        new sources' global ids and the updated count.
    """
    colptr, dst_np = adj.colptr.numpy(), dst.numpy()
    big = _count_sampled_rows(colptr, dst_np, k)
    u = (
        torch.rand(big, k, generator=generator, dtype=torch.float64)
        if big
        else torch.empty(0, max(k, 0), dtype=torch.float64)
    )
    excl = np.empty(0, np.int64) if exclude is None else exclude.numpy()
    arrays = (colptr, adj.row.numpy(), adj.perm.numpy(), dst_np)
    parallel = PARALLEL_ANY_THREAD or threading.current_thread() is threading.main_thread()
    threads = min(FREE_CORES.free(), numba.config.NUMBA_NUM_THREADS) if parallel else 1
    if threads > 1 and dst_np.shape[0] >= PARALLEL_ROWS:
        numba.set_num_threads(threads)
        kernel = _hop_parallel
    else:  # one thread free, or too small a frontier to pay for a parallel region
        kernel = _hop_serial
    rows, which, eids, new, count = kernel(
        *arrays, k, u.numpy(), local.numpy(), count, excl, num_dst
    )
    return (
        torch.from_numpy(rows),
        torch.from_numpy(which),
        torch.from_numpy(eids),
        torch.from_numpy(new),
        int(count),
    )
