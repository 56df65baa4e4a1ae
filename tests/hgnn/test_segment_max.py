"""The numba CSC max kernel equals torch's segment_reduce (the CUDA path)."""

from __future__ import annotations

import torch

from hgnn.segment_max import BlockedCSC, segment_max


def test_numba_kernel_equals_segment_reduce():
    g = torch.Generator().manual_seed(0)
    deg = torch.randint(0, 6, (300,), generator=g)
    deg[:5] = 0  # destinations without neighbours give 0 rows
    colptr = torch.cat([torch.zeros(1, dtype=torch.long), deg.cumsum(0)])
    row = torch.randint(0, 50, (int(colptr[-1]),), generator=g)
    table = torch.relu(torch.randn(50, 8, generator=g))
    for lo, hi in [(0, 300), (17, 123), (5, 7)]:
        got = segment_max(table, colptr, row, lo, hi)
        a, b = int(colptr[lo]), int(colptr[hi])
        ref = torch.segment_reduce(table[row[a:b]], "max", lengths=deg[lo:hi], initial=0.0)
        assert got.shape == (hi - lo, 8)
        assert torch.equal(got, ref)
    assert torch.equal(segment_max(table, colptr, row, 0, 5), torch.zeros(5, 8))
    assert segment_max(table, colptr, row, 40, 40).shape == (0, 8)


def test_blocked_kernel_equals_the_plain_one():
    g = torch.Generator().manual_seed(1)
    n_src, n_dst = 97, 130
    deg = torch.randint(0, 9, (n_dst,), generator=g)
    deg[::7] = 0
    colptr = torch.cat([torch.zeros(1, dtype=torch.long), deg.cumsum(0)])
    row = torch.randint(0, n_src, (int(colptr[-1]),), generator=g)
    table = torch.relu(torch.randn(n_src, 6, generator=g))
    ref = segment_max(table, colptr, row, 0, n_dst)
    for block in (1, 5, 16, 97, 1000):  # blocks of 1 row .. one block for everything
        assert torch.equal(BlockedCSC(colptr, row, n_src, block).max(table), ref), block
    empty = BlockedCSC(torch.zeros(4, dtype=torch.long), torch.zeros(0, dtype=torch.long), 5, 2)
    assert torch.equal(empty.max(table[:5]), torch.zeros(3, 6))
