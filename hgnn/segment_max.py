"""Max over in-neighbours for CSC adjacency without materializing per-edge messages.

``out[v] = max(0, max_{e in colptr[v]:colptr[v+1]} table[row[e]])`` — the paper's max-pool
aggregation once ``table = relu(W_r h + b_r)`` is computed per source node (``relu >= 0``,
so 0 is the value for no neighbours, as in PyG's max aggregation).

On CPU a numba kernel (parallel over destinations) reads each neighbour row once and keeps
the running max in the output row: memory traffic is ``E x dim`` reads, with no
``[E, dim]`` temporary. On CUDA (or for any other device) the fallback is
``index_select`` + ``torch.segment_reduce``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch


@numba.njit(parallel=True, fastmath=True, cache=True)
def _csc_max(table: np.ndarray, colptr: np.ndarray, row: np.ndarray, out: np.ndarray) -> None:
    base = colptr[0]
    for v in numba.prange(out.shape[0]):
        acc = out[v]
        acc[:] = 0.0
        for e in range(colptr[v] - base, colptr[v + 1] - base):
            r = table[row[e]]
            for j in range(acc.shape[0]):
                acc[j] = max(acc[j], r[j])


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
    if table.device.type == "cpu" and table.dtype == torch.float32:
        out = torch.empty(hi - lo, table.shape[1])
        _csc_max(
            table.contiguous().numpy(),
            colptr[lo : hi + 1].numpy(),
            row[a:b].numpy(),
            out.numpy(),
        )
        return out
    deg = (colptr[lo + 1 : hi + 1] - colptr[lo:hi]).to(table.device)
    rows = table.index_select(0, row[a:b].to(table.device))
    return torch.segment_reduce(rows, "max", lengths=deg, initial=0.0)
