"""RowAdam takes SparseAdam's steps (same state layout, same weights within rounding),
also for gradients with repeated rows (summed over ranks) and after a state round-trip."""

from __future__ import annotations

import torch

from audiograph.hgnn.row_adam import RowAdam


def test_row_adam_equals_sparse_adam():
    g = torch.Generator().manual_seed(0)
    tables = [torch.nn.Embedding(50, 8, sparse=True) for _ in range(2)]
    tables[1].weight.data.copy_(tables[0].weight.data)
    opts = [
        RowAdam(tables[0].parameters(), lr=0.01),
        torch.optim.SparseAdam(tables[1].parameters(), lr=0.01),
    ]
    for step in range(6):
        ids = torch.randint(50, (30,), generator=g)  # repeated rows: an uncoalesced gradient
        if step % 2:
            ids = ids.unique()  # distinct rows: the fast path
        target = torch.randn(ids.numel(), 8, generator=g)
        for table, opt in zip(tables, opts, strict=True):
            opt.zero_grad()
            ((table(ids) - target) ** 2).sum().backward()
            opt.step()
    a, b = tables[0].weight.data, tables[1].weight.data
    assert not torch.equal(a, torch.zeros_like(a))
    assert torch.allclose(a, b, atol=1e-6, rtol=0)
    sa, sb = opts[0].state_dict()["state"][0], opts[1].state_dict()["state"][0]
    assert sa["step"] == sb["step"] == 6
    assert torch.allclose(sa["exp_avg_sq"], sb["exp_avg_sq"], atol=1e-7, rtol=0)
    fresh = RowAdam(tables[0].parameters(), lr=0.01)
    fresh.load_state_dict(opts[1].state_dict())  # a SparseAdam checkpoint loads
    assert fresh.state_dict()["state"][0]["step"] == 6
