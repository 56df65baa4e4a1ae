"""Compressed in-neighbour lists per edge type and exact sampling without replacement.

For an edge type ``(s, r, d)`` messages flow ``s -> d``, so the neighbours sampled for
a node of type ``d`` are the sources of its incoming edges (PyG convention). The
adjacency is stored as CSC: ``colptr`` ``[n_d + 1]``, ``row`` ``[E]`` (source ids, grouped
by destination and sorted within a group), ``perm`` ``[E]`` (position of each CSC slot in
the original ``edge_index``) and optional ``weight`` ``[E]``. All tensors live on one
device; sampling runs there (CPU or CUDA) with torch ops only.

Sampling methods (both exact, without replacement):

* uniform — Floyd's algorithm, vectorized over nodes: for ``j = deg - k .. deg - 1`` draw
  ``t ~ U{0..j}`` and take ``t`` unless already taken, else ``j``. Each ``k``-subset is
  equally likely; the cost is ``O(k^2)`` per node, independent of its degree.
* weighted — Efraimidis–Spirakis / Gumbel-top-k: key ``log(u) / w`` per neighbour, keep the
  ``k`` largest. Rows are bucketed by degree (powers of two) and each bucket is one
  dense ``topk``, so the cost is ``O(deg)`` per node with at most 2x padding.

Nodes with ``deg <= k`` (or ``k < 0``) take all their neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Adjacency:
    """CSC in-neighbour lists of one edge type (see module docstring for shapes)."""

    colptr: torch.Tensor
    row: torch.Tensor
    perm: torch.Tensor
    weight: torch.Tensor | None
    num_src: int

    @classmethod
    def from_edge_index(
        cls,
        edge_index: torch.Tensor,
        num_src: int,
        num_dst: int,
        weight: torch.Tensor | None = None,
    ) -> Adjacency:
        """Build from ``edge_index`` ``[2, E]`` (row 0 = source, row 1 = destination)."""
        src, dst = edge_index[0].long(), edge_index[1].long()
        key = dst * max(num_src, 1) + src
        if key.numel() < 2 or bool((key[1:] >= key[:-1]).all()):  # already CSC order
            perm = torch.arange(key.numel(), device=src.device)
        else:
            perm = torch.argsort(key, stable=True)
        del key
        counts = torch.bincount(dst, minlength=num_dst)
        colptr = torch.zeros(num_dst + 1, dtype=torch.long, device=src.device)
        colptr[1:] = torch.cumsum(counts, 0)
        w = None if weight is None else weight[perm].float()
        return cls(colptr, src[perm].contiguous(), perm, w, num_src)

    def to(self, device: torch.device | str) -> Adjacency:
        """Copy to ``device``."""
        w = None if self.weight is None else self.weight.to(device)
        return Adjacency(
            self.colptr.to(device), self.row.to(device), self.perm.to(device), w, self.num_src
        )

    @property
    def num_edges(self) -> int:
        return int(self.row.numel())


def sample_neighbors(
    adj: Adjacency,
    nodes: torch.Tensor,
    k: int,
    weighted: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample up to ``k`` in-neighbours of each node without replacement.

    Args:
        adj: adjacency of one edge type.
        nodes: destination node ids ``[N]`` (int64).
        k: fan-out; ``-1`` takes all neighbours.
        weighted: sample proportionally to ``adj.weight`` (must be > 0) instead of uniformly.
        generator: random generator on ``nodes.device``.

    Returns:
        ``(slot, which)``: CSC slots of the sampled edges ``[M]`` (``adj.row[slot]`` is the
        neighbour, ``adj.perm[slot]`` the original edge id) and the position in ``nodes`` of
        the node each edge was sampled for ``[M]``. Nodes taking all
        their neighbours come first, then the sampled ones.
    """
    start = take(adj.colptr, nodes)
    deg = take(adj.colptr, nodes + 1) - start
    if k < 0:
        return _take_all(start, deg)
    full = deg <= k
    small = torch.nonzero(full).flatten()
    slot_a, which_a = _take_all(take(start, small), take(deg, small))
    which_a = take(small, which_a)
    big = torch.nonzero(~full).flatten()
    if big.numel() == 0:
        return slot_a, which_a
    start_b, deg_b = take(start, big), take(deg, big)
    if weighted:
        slot_b = _weighted(adj, start_b, deg_b, k, generator)
    else:
        slot_b = start_b[:, None] + _floyd(deg_b, k, generator)
    which_b = big.repeat_interleave(k)
    return torch.cat([slot_a, slot_b.flatten()]), torch.cat([which_a, which_b])


def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[index]`` for 1-D tensors via ``index_select`` (faster than ``[]`` on CPU)."""
    return torch.index_select(values, 0, index)


def _take_all(start: torch.Tensor, deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    which = torch.repeat_interleave(torch.arange(deg.numel(), device=deg.device), deg)
    offsets = torch.cumsum(deg, 0) - deg
    slot = torch.arange(which.numel(), device=deg.device) + take(start - offsets, which)
    return slot, which


def _floyd(deg: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform ``k``-subsets of ``{0..deg-1}`` per row (``deg > k``) → ``[R, k]``."""
    rows = deg.numel()
    out = torch.empty(rows, k, dtype=torch.long, device=deg.device)
    u = torch.rand(rows, k, generator=generator, device=deg.device, dtype=torch.float64)
    for step in range(k):
        j = deg - k + step
        t = (u[:, step] * (j + 1).double()).long().clamp_(max=j)
        taken = (out[:, :step] == t[:, None]).any(1) if step else torch.zeros_like(t, dtype=bool)
        out[:, step] = torch.where(taken, j, t)
    return out


def _weighted(
    adj: Adjacency,
    start: torch.Tensor,
    deg: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Top-``k`` of ``log(u) / w`` per row, rows bucketed by degree → slots ``[R, k]``."""
    if adj.weight is None:
        raise ValueError("weighted sampling needs edge weights")
    out = torch.empty(deg.numel(), k, dtype=torch.long, device=deg.device)
    bucket = torch.ceil(torch.log2(deg.double())).long()
    for b in torch.unique(bucket).tolist():
        rows = torch.nonzero(bucket == b).flatten()
        width = int(deg[rows].max())
        offs = torch.arange(width, device=deg.device)
        slots = start[rows, None] + offs
        valid = offs < deg[rows, None]
        slots = torch.where(valid, slots, start[rows, None])
        u = torch.rand(slots.shape, generator=generator, device=deg.device).clamp_(min=1e-12)
        keys = torch.log(u) / adj.weight[slots]
        keys = keys.masked_fill(~valid, float("-inf"))
        out[rows] = torch.gather(slots, 1, keys.topk(k, dim=1).indices)
    return out
