"""Fused max-pool aggregation for training: gather + segment max with an argmax backward.

``max_pool(table, src, dst, num_dst)[v, j] = max(0, max_{e: dst[e] = v} table[src[e], j])``
— PyG's ``aggr="max"`` over the messages ``table[src[e]]`` (0 for no neighbours) without
ever holding the ``[E, dim]`` message tensor, forward or backward:

* forward (CPU): a parallel numba kernel over destinations reads each edge's source row
  and keeps, per output entry, the max and the source row it came from (``argmax``,
  ``[num_dst, dim]`` int32; -1 where the max is the initial 0);
* backward: ``grad_table[argmax[v, j], j] += grad[v, j]`` — one write per output entry
  (parallel over columns, so no two threads write the same entry).

Ties: the whole gradient goes to the first source (in CSC order) holding the max, where
``torch.scatter_reduce(..., "amax")`` splits it evenly among the tied sources. In the
HGNN ``table = relu(...)`` and ties are (almost surely) only at 0, where relu passes no
gradient either way, so the weights' gradients agree (tested against the unfused layer).

On other devices the same function runs ``index_select`` + ``scatter_reduce("amax")``
with torch's autograd (which does materialize the messages).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from audiograph.samplers.threads import numba_threads


@numba.njit(cache=True)
def _is_sorted(a: np.ndarray) -> bool:
    for i in range(1, a.shape[0]):  # noqa: SIM110 (numba compiles the plain loop)
        if a[i] < a[i - 1]:
            return False
    return True


@numba.njit(parallel=True, fastmath=True, cache=True)
def _forward(table, ptr, src, out, arg):  # pragma: no cover - compiled
    dim = table.shape[1]
    for v in numba.prange(out.shape[0]):  # a thread owns a destination's row
        o, a = out[v], arg[v]
        o[:] = 0.0  # the outputs come uninitialised: filled here, in parallel
        a[:] = -1
        for e in range(ptr[v], ptr[v + 1]):
            r = src[e]
            row = table[r]
            for j in range(dim):  # branch-free, so it vectorizes
                x = row[j]
                c = x > o[j]
                o[j] = x if c else o[j]
                a[j] = r if c else a[j]


@numba.njit(parallel=True, cache=True)
def _backward(grad, arg, grad_table):  # pragma: no cover - compiled
    for r in numba.prange(grad_table.shape[0]):  # uninitialised: zeroed in parallel
        grad_table[r, :] = 0.0
    for j in numba.prange(grad.shape[1]):  # a thread owns a column
        for v in range(grad.shape[0]):
            r = arg[v, j]
            if r >= 0:
                grad_table[r, j] += grad[v, j]


def _csc(src: torch.Tensor, dst: torch.Tensor, num_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr [num_dst + 1], src sorted by dst)``; a stable sort only when ``dst`` is not
    already sorted (the sampler emits edges grouped by destination)."""
    d = dst.numpy()
    if not _is_sorted(d):
        order = torch.sort(dst, stable=True).indices
        src, d = src[order], dst[order].numpy()
    ptr = np.zeros(num_dst + 1, np.int64)
    np.cumsum(np.bincount(d, minlength=num_dst), out=ptr[1:])
    return ptr, src.numpy().astype(np.int32, copy=False)


class _FusedMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table, src, dst, num_dst):  # type: ignore[override]
        table = table.contiguous()
        ptr, src_s = _csc(src, dst, num_dst)
        out = torch.empty(num_dst, table.shape[1], dtype=table.dtype)
        arg = torch.empty((num_dst, table.shape[1]), dtype=torch.int32)
        numba_threads()
        _forward(table.detach().numpy(), ptr, src_s, out.numpy(), arg.numpy())
        ctx.save_for_backward(arg)
        ctx.num_src = table.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (arg,) = ctx.saved_tensors
        grad_table = torch.empty(ctx.num_src, grad.shape[1], dtype=grad.dtype)
        numba_threads()
        _backward(grad.contiguous().numpy(), arg.numpy(), grad_table.numpy())
        return grad_table, None, None, None


def max_pool(
    table: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, num_dst: int
) -> torch.Tensor:
    """Max of ``table`` rows over each destination's in-edges, differentiable in ``table``.

    Args:
        table: ``[num_src, dim]`` float32 messages per source node.
        src, dst: ``[E]`` int64 source rows of ``table`` and destination ids.
        num_dst: number of destinations.

    Returns:
        ``[num_dst, dim]``: per destination, ``max(0, max over its edges)``.
    """
    if table.device.type == "cpu" and table.dtype == torch.float32:
        return _FusedMaxPool.apply(table, src, dst, num_dst)
    rows = table.index_select(0, src)
    index = dst[:, None].expand(-1, table.shape[1])
    out = torch.zeros(num_dst, table.shape[1], dtype=table.dtype, device=table.device)
    return out.scatter_reduce(0, index, rows, "amax", include_self=True)
