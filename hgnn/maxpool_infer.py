"""Max over in-neighbours for CSC adjacency without materializing per-edge messages.

``out[v] = max(0, max_{e in colptr[v]:colptr[v+1]} table[row[e]])`` — the paper's max-pool
aggregation once ``table = relu(W_r h + b_r)`` is computed per source node (``relu >= 0``,
so 0 is the value for no neighbours, as in PyG's max aggregation).

On CPU, :class:`BlockedCSC` reorders a relation's edges once (per destination tile, by
source block: a block of ``table`` rows fits in cache) and a parallel numba kernel
max-reduces one block at a time, with no ``[E, dim]`` temporary. On CUDA (or any other
device), :func:`segment_max` runs ``index_select`` + ``torch.segment_reduce`` on a range
of destinations.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from audiograph.samplers.threads import numba_threads


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


@numba.njit(parallel=True, cache=True)
def _tile_order(
    colptr: np.ndarray, row: np.ndarray, tile: int, block: int, nb: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inside each tile of ``tile`` destinations, a stable counting sort of the CSC edges by
    source block → ``(row_s, dst_s)`` int32; tiles keep their CSC range, so they are sorted
    in parallel and ``colptr[tile start]`` still bounds each tile's edges."""
    num_dst = colptr.shape[0] - 1
    row_s = np.empty(row.shape[0], np.int32)
    dst_s = np.empty(row.shape[0], np.int32)
    for t in numba.prange((num_dst + tile - 1) // tile):
        v0, v1 = t * tile, min(t * tile + tile, num_dst)
        a = colptr[v0]
        pos = np.zeros(nb + 1, np.int64)
        for e in range(a, colptr[v1]):
            pos[row[e] // block + 1] += 1
        for k in range(nb):
            pos[k + 1] += pos[k]
        for v in range(v0, v1):
            for e in range(colptr[v], colptr[v + 1]):
                k = row[e] // block
                row_s[a + pos[k]] = row[e]
                dst_s[a + pos[k]] = v
                pos[k] += 1
    return row_s, dst_s


@numba.njit(parallel=True, fastmath=True, cache=True)
def _tiled_max(
    table: np.ndarray,
    row_s: np.ndarray,
    dst_s: np.ndarray,
    colptr: np.ndarray,
    tile: int,
    out: np.ndarray,
) -> None:
    num_dst = out.shape[0]
    for t in numba.prange((num_dst + tile - 1) // tile):  # a thread owns a tile's outputs
        v0, v1 = t * tile, min(t * tile + tile, num_dst)
        for e in range(colptr[v0], colptr[v1]):  # source-block order: one block in cache
            o, r = out[dst_s[e]], table[row_s[e]]
            for j in range(o.shape[0]):
                o[j] = max(o[j], r[j])


class BlockedCSC:
    """The edges of a CSC adjacency reordered once (reused by every layer) for a
    cache-friendly max. Destinations are cut into tiles of ``tile`` (default: at least 8
    tiles per thread; one thread per tile, so no two threads write the same output row);
    inside a tile the edges are sorted by source block of ``block`` rows, so :meth:`max`
    reads one cache-sized block of ``table`` rows at a time instead of a random row per
    edge. Same result as :func:`segment_max`; the order costs 8 bytes per edge (int32
    source and destination ids).
    """

    def __init__(
        self,
        colptr: torch.Tensor,
        row: torch.Tensor,
        num_src: int,
        block: int,
        tile: int | None = None,
    ):
        if max(num_src, colptr.numel()) >= 2**31:
            raise ValueError("BlockedCSC stores int32 node ids: at most 2**31 - 1 nodes")
        self.num_dst = colptr.numel() - 1
        if tile is None:  # >= 8 tiles per thread (balance), at most 64k outputs (32 MB)
            tile = min(65536, -(-self.num_dst // (8 * numba.get_num_threads())))
        self.tile = max(1, tile)
        self.colptr = colptr.numpy()
        block, nb = max(1, block), max(1, -(-num_src // max(1, block)))
        self.row_s, self.dst_s = _tile_order(self.colptr, row.numpy(), self.tile, block, nb)

    def max(self, table: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``[num_dst, dim]``: per destination, max of ``table`` rows over its in-edges
        (0 without edges); ``table`` float32 ``[num_src, dim]`` on CPU, entries >= 0.
        ``out``, if given, must be zero-filled ``[num_dst, dim]`` float32 (it is returned)."""
        out = torch.zeros(self.num_dst, table.shape[1]) if out is None else out
        numba_threads()
        _tiled_max(
            table.contiguous().numpy(), self.row_s, self.dst_s, self.colptr, self.tile, out.numpy()
        )
        return out


def block_rows(dim: int, cache_bytes: int = 8 << 20) -> int:
    """Source rows per block so that one block of float32 ``dim``-vectors fits in
    ``cache_bytes``."""
    return max(1, cache_bytes // (4 * dim))
