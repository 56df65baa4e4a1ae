"""The evaluate report's item slices and per-user outcomes, end to end, and their table."""

from __future__ import annotations

import json

import pytest

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.split import split_dataset
from audiograph.twotower.evaluate import evaluate_run, results_table
from audiograph.twotower.train import TwoTowerConfig, train_twotower


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A split synthetic dataset and a 1-epoch plain two-tower run on its train part."""
    root = tmp_path_factory.mktemp("report")
    items = {"music": 40, "podcast": 20, "audiobook": 30}
    prepare_synthetic(root / "data", users=150, items=items, seed=0)
    split_dataset(root / "data", root / "split")
    cfg = TwoTowerConfig(
        epochs=1,
        tower_dims=[16, 8],
        cat_dim=4,
        batch_size=64,
        use_hgnn=False,
        cache_dir=str(root / "cache"),
    )
    train_twotower(root / "split" / "train", None, root / "2t", cfg, quiet=True)
    return root


def test_report_has_item_slices_and_per_user_outcomes_only_when_asked(run):
    kw = {"target_type": "audiobook", "models": ("popularity", "2t-hgnn")}
    plain = evaluate_run(run / "2t", run / "split" / "test", **kw)
    paired = evaluate_run(run / "2t", run / "split" / "test", per_user=True, **kw)
    for name in kw["models"]:
        r, p = plain["results"][name], paired["results"][name]
        assert "per_user" not in r
        assert set(r["new_items"]) == set(r["rare_items"]) == {"pairs", "items", "recall@10"}
        assert p["per_user"]["user_id"] == sorted(p["per_user"]["user_id"])
        hits = p["per_user"]["hr@10"]
        assert len(hits) == r["users"] and set(hits) <= {0, 1}
        assert sum(hits) / len(hits) == pytest.approx(r["hr@10"])
    # the models are scored on the same users, so they pair user by user
    ids = {m: paired["results"][m]["per_user"]["user_id"] for m in kw["models"]}
    assert ids["popularity"] == ids["2t-hgnn"]
    json.dumps(paired)


def test_results_table_shows_the_slices_and_tolerates_old_reports():
    row = {
        "hr@10": 0.5,
        "recall@10": 0.4,
        "ndcg@10": 0.3,
        "mrr": 0.2,
        "coverage": 0.1,
        "warm": {"hr@10": 0.6, "users": 3},
    }
    new = {
        **row,
        "new_items": {"pairs": 7, "items": 4, "recall@10": 0.25},
        "rare_items": {"pairs": 2, "items": 2, "recall@10": None},
    }
    table = results_table({"target_type": "book", "results": {"old": row, "new": new}})
    lines = table.splitlines()
    assert "| new-item recall@10 | rare-item recall@10 |" in lines[1]
    assert lines[2].count("|---") == lines[1].count("|") - 1
    assert lines[3].endswith("| – (–) | – (–) |")
    assert lines[4].endswith("| 0.2500 (7) | – (2) |")
