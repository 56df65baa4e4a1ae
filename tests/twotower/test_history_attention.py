"""The user tower's attention pooling over the history: its columns and its module."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from audiograph.twotower.history_attention import HistoryAttention, history_columns

ROWS = pl.DataFrame({"item_id": ["a", "b", "c", "d"], "row": [0, 1, 2, 3]})


def _inter(ts: list | None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", "v"],
            "item_id": ["a", "b", "c", "a", "d"],
            "weight": [1.0, 5.0, 2.0, 3.0, 1.0],
            "ts": ts,
        },
        schema_overrides={"ts": pl.Int64},
    )


def test_columns_hold_the_latest_items_else_the_most_played():
    users = pl.Series(["u", "v", "w"])
    by_weight = history_columns(_inter(None), ROWS, users, 2)
    # u: b (5) then a (1 + 3 = 4); c (2) does not fit; v: d; w: nothing
    np.testing.assert_allclose(by_weight[:, :2], [[1, 0], [3, -1], [-1, -1]])
    np.testing.assert_allclose(by_weight[0, 2:4], np.log1p([5.0, 4.0]), rtol=1e-6)
    np.testing.assert_allclose(by_weight[:, 4:], [[0, 1], [0, 0], [0, 0]])
    latest = history_columns(_inter([1, 5, 9, 2, 7]), ROWS, users, 2)  # first ts per pair
    np.testing.assert_allclose(latest[:, :2], [[2, 1], [3, -1], [-1, -1]])


def test_attention_pools_over_real_rows_only():
    torch.manual_seed(0)
    att = HistoryAttention(n_items=4, vec_dim=3, length=2, queries=2, dim=5)
    att.table.copy_(torch.arange(12.0).view(4, 3))
    cols = torch.from_numpy(history_columns(_inter(None), ROWS, pl.Series(["u", "v", "w"]), 2))
    out = att(cols)
    assert out.shape == (3, 10)
    assert torch.equal(out[2], torch.zeros(10))  # no history: zeros
    # one history item: every query's weight is 1 on it, so each block is its value
    value = att.value(att.table[3])
    torch.testing.assert_close(out[1].view(2, 5), value.expand(2, 5))
    # padding rows never matter: change the table row a pad would have read
    att.table[0] += 100.0
    torch.testing.assert_close(att(cols)[1], out[1])


def test_item_ids_code_warm_items_only_and_hiding_is_seeded():
    from audiograph.twotower.config import TwoTowerConfig
    from audiograph.twotower.model import TwoTower, build_spec, item_inputs

    items = pl.DataFrame({"item_id": ["a", "b", "c", "d"], "item_type": ["t"] * 4})
    inter = _inter(None).filter(pl.col("item_id") != "c").with_columns(signal=pl.lit("play"))
    cfg = TwoTowerConfig(item_ids=4, history_items=2)
    spec = build_spec(items, inter, None, 3, 3, 0, cfg)
    assert (spec.item_ids, spec.n_items, spec.history_items) == (4, 4, 2)
    cat, _ = item_inputs(items, spec, np.zeros((4, 3), np.float32), None, inter)
    assert cat[:, -1].tolist() == [1, 2, 0, 4]  # row + 1 when warm, 0 for the new item c
    model = TwoTower.of_config(spec, cfg)
    assert torch.equal(model.item_id.weight[0], torch.zeros(4))
    big = cat.repeat(500, 1)
    a = model.hide_ids(big, torch.Generator().manual_seed(1))
    assert torch.equal(a, model.hide_ids(big, torch.Generator().manual_seed(1)))
    assert torch.equal(a[:, :-1], big[:, :-1])
    hidden = (a[:, -1] == 0) & (big[:, -1] != 0)
    assert 0.05 < hidden.float().mean() / (big[:, -1] != 0).float().mean() < 0.15
