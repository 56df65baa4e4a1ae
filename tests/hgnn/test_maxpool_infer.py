"""CSC max-pool kernels: the torch fallback and the cache-blocked numba kernel agree with a
brute-force loop."""

from __future__ import annotations

import torch

from audiograph.hgnn.maxpool_infer import BlockedCSC, segment_max


def random_csc(seed: int, n_src: int, n_dst: int, dim: int):
    g = torch.Generator().manual_seed(seed)
    deg = torch.randint(0, 9, (n_dst,), generator=g)
    deg[::7] = 0  # destinations without neighbours give 0 rows
    colptr = torch.cat([torch.zeros(1, dtype=torch.long), deg.cumsum(0)])
    row = torch.randint(0, n_src, (int(colptr[-1]),), generator=g)
    return colptr, row, torch.relu(torch.randn(n_src, dim, generator=g))


def brute_force(table, colptr, row, lo, hi):
    out = torch.zeros(hi - lo, table.shape[1])
    for v in range(lo, hi):
        for e in range(int(colptr[v]), int(colptr[v + 1])):
            out[v - lo] = torch.maximum(out[v - lo], table[row[e]])
    return out


def test_segment_max_equals_brute_force():
    colptr, row, table = random_csc(0, 50, 300, 8)
    for lo, hi in [(0, 300), (17, 123), (7, 8)]:
        assert torch.equal(
            segment_max(table, colptr, row, lo, hi), brute_force(table, colptr, row, lo, hi)
        )
    assert torch.equal(segment_max(table, colptr, row, 7, 8), torch.zeros(1, 8))  # no edges
    assert segment_max(table, colptr, row, 40, 40).shape == (0, 8)


def test_blocked_kernel_equals_brute_force():
    colptr, row, table = random_csc(1, 97, 130, 6)
    ref = brute_force(table, colptr, row, 0, 130)
    for block in (1, 5, 16, 97, 1000):  # blocks of 1 row .. one block for everything
        for tile in (1, 7, 130, 4096):  # one destination per tile .. one tile for all
            got = BlockedCSC(colptr, row, 97, block, tile).max(table)
            assert torch.equal(got, ref), (block, tile)
    empty = BlockedCSC(torch.zeros(4, dtype=torch.long), torch.zeros(0, dtype=torch.long), 5, 2)
    assert torch.equal(empty.max(table[:5]), torch.zeros(3, 6))
