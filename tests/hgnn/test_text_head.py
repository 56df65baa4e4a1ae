"""The export's text head: new items land where the graph puts items with their text."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audiograph.hgnn.text_head import LAMBDAS, fit_text_head


def _warm(n: int, seed: int) -> tuple[dict, dict, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(12, 6, generator=g, dtype=torch.float64)
    offset = {"a": torch.zeros(6, dtype=torch.float64), "b": torch.full((6,), 2.0).double()}
    x = {t: torch.randn(n, 12, generator=g) for t in ("a", "b")}
    y = {t: F.normalize(x[t].double() @ mix + offset[t], dim=-1).float() for t in x}
    return x, y, mix


def test_the_head_recovers_a_linear_map_per_type_and_is_deterministic():
    x, y, mix = _warm(300, 0)
    head = fit_text_head(x, y, seed=3)
    assert head is not None and head.fitted == 600 and head.types == ["a", "b"]
    assert head.ridge in LAMBDAS and head.holdout_cosine > 0.95
    new, _, _ = _warm(50, 1)  # unseen items, the same map
    for t, offset in (("a", 0.0), ("b", 2.0)):
        want = F.normalize(new[t].double() @ mix + offset, dim=-1).float()
        got = head.predict(new[t], t)
        assert got.shape == (50, 6)
        torch.testing.assert_close(got.norm(dim=-1), torch.ones(50))
        assert F.cosine_similarity(got, want, dim=-1).min() > 0.9
    again = fit_text_head(x, y, seed=3)
    assert torch.equal(again.weight, head.weight) and again.report() == head.report()


def test_too_few_items_give_no_head():
    x, y, _ = _warm(4, 0)
    assert fit_text_head(x, y) is None
