"""Max over in-neighbours for CSC adjacency without materializing per-edge messages.

``out[v] = max(0, max_{e in colptr[v]:colptr[v+1]} table[row[e]])`` — the paper's max-pool
aggregation once ``table = relu(W_r h + b_r)`` is computed per source node (``relu >= 0``,
so 0 is the value for no neighbours, as in PyG's max aggregation).

On CPU, :class:`BlockedCSC` reorders a relation's edges once by source block (a block of
``table`` rows fits in cache) and a numba kernel max-reduces one block at a time, with no
``[E, dim]`` temporary. On CUDA (or any other device), :func:`segment_max` runs
``index_select`` + ``torch.segment_reduce`` on a range of destinations.
"""

from __future__ import annotations

import numba
import numpy as np
import torch


def segment_max(
    table: torch.Tensor, colptr: torch.Tensor, row: torch.Tensor, lo: int, hi: int
) -> torch.Tensor:
    """Max of ``table`` rows over the in-neighbours of destinations ``lo:hi``.

    Args:
        table: ``[n_src, dim]`` float32, entries ``>= 0``.
        colptr: ``[n_dst + 1]`` CSC pointers; ``row``: ``[E]`` source ids.
        lo, hi: destination range.

    Returns:
        ``[hi - lo, dim]`` on ``table``'s device (0 rows for destinations without edges).
    """
    a, b = int(colptr[lo]), int(colptr[hi])
    if a == b:  # no edges at all (segment_reduce rejects empty input)
        return torch.zeros(hi - lo, table.shape[1], device=table.device)
    deg = (colptr[lo + 1 : hi + 1] - colptr[lo:hi]).to(table.device)
    rows = table.index_select(0, row[a:b].to(table.device))
    return torch.segment_reduce(rows, "max", lengths=deg, initial=0.0)


@numba.njit(cache=True)
def _block_order(
    colptr: np.ndarray, row: np.ndarray, num_src: int, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counting sort of the CSC edges by source block (stable: destination order kept
    inside a block) → ``(row_sorted, seg_ptr, seg_dst, block_ptr)``, where a segment is a
    run of one destination's edges inside one block."""
    nb = (num_src + block - 1) // block
    start = np.zeros(nb + 1, np.int64)
    for e in range(row.shape[0]):
        start[row[e] // block + 1] += 1
    for b in range(nb):
        start[b + 1] += start[b]
    pos = start[:-1].copy()
    row_s = np.empty_like(row)
    dst_s = np.empty(row.shape[0], np.int64)
    for v in range(colptr.shape[0] - 1):
        for e in range(colptr[v], colptr[v + 1]):
            b = row[e] // block
            row_s[pos[b]] = row[e]
            dst_s[pos[b]] = v
            pos[b] += 1
    n_seg = 0
    for e in range(row.shape[0]):
        if e == 0 or dst_s[e] != dst_s[e - 1] or row_s[e] // block != row_s[e - 1] // block:
            n_seg += 1
    seg_ptr = np.empty(n_seg + 1, np.int64)
    seg_dst = np.empty(n_seg, np.int64)
    block_ptr = np.zeros(nb + 1, np.int64)
    s = 0
    for e in range(row.shape[0]):
        if e == 0 or dst_s[e] != dst_s[e - 1] or row_s[e] // block != row_s[e - 1] // block:
            seg_ptr[s] = e
            seg_dst[s] = dst_s[e]
            block_ptr[row_s[e] // block + 1] = s + 1
            s += 1
    seg_ptr[n_seg] = row.shape[0]
    for b in range(nb):  # blocks without segments end where the previous one ended
        block_ptr[b + 1] = max(block_ptr[b + 1], block_ptr[b])
    return row_s, seg_ptr, seg_dst, block_ptr


@numba.njit(parallel=True, fastmath=True, cache=True)
def _blocked_max(
    table: np.ndarray,
    row_s: np.ndarray,
    seg_ptr: np.ndarray,
    seg_dst: np.ndarray,
    block_ptr: np.ndarray,
    out: np.ndarray,
) -> None:
    for b in range(block_ptr.shape[0] - 1):  # one source block (cache-resident) at a time
        for s in numba.prange(block_ptr[b], block_ptr[b + 1]):  # distinct dsts in a block
            acc = out[seg_dst[s]]
            for e in range(seg_ptr[s], seg_ptr[s + 1]):
                r = table[row_s[e]]
                for j in range(acc.shape[0]):
                    acc[j] = max(acc[j], r[j])


class BlockedCSC:
    """The edges of a CSC adjacency reordered by source block (built once, reused by every
    layer): :meth:`max` then reads one cache-sized block of ``table`` rows at a time
    instead of a random row per edge (3x faster than a plain per-destination numba loop on
    the 1M-item graph's largest relation), with the same result as :func:`segment_max`."""

    def __init__(self, colptr: torch.Tensor, row: torch.Tensor, num_src: int, block: int):
        self.num_dst, self.block = colptr.numel() - 1, block
        self.parts = _block_order(colptr.numpy(), row.numpy(), max(num_src, 1), block)

    def max(self, table: torch.Tensor) -> torch.Tensor:
        """``[num_dst, dim]``: per destination, max of ``table`` rows over its in-edges
        (0 without edges); ``table`` float32 ``[num_src, dim]`` on CPU, entries >= 0."""
        out = torch.zeros(self.num_dst, table.shape[1])
        _blocked_max(table.contiguous().numpy(), *self.parts, out.numpy())
        return out


def block_rows(dim: int, cache_bytes: int = 8 << 20) -> int:
    """Source rows per block so that one block of float32 ``dim``-vectors fits in
    ``cache_bytes``."""
    return max(1, cache_bytes // (4 * dim))
