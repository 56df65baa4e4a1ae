"""benchmarks/quality.py: product-default experiments, resume, item slices, the paired
per-user bootstrap and the optional oracle row (the statistics by hand, one tiny run end
to end)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.twotower.config import MODELS


@pytest.fixture(scope="module")
def bench(load_scripts):
    """The ``quality`` and ``quality_stats`` scripts."""
    _, stats, quality = load_scripts("seeded", "quality_stats", "quality")
    return SimpleNamespace(stats=stats, quality=quality)


def test_paired_bootstrap_pairs_users_and_is_seeded(bench):
    boot = bench.stats.paired_bootstrap
    a = {"user_id": ["u1", "u2", "u3", "u4"], "hr@10": [1, 1, 0, 1]}
    same = boot(a, a, seed=0)
    assert same == {"diff": 0.0, "lo": 0.0, "hi": 0.0, "users": 4}
    # b has u1..u3 (in another order) and an extra user: 3 pairs, differences 1, 0, 0
    b = {"user_id": ["u3", "u9", "u2", "u1"], "hr@10": [0, 1, 1, 0]}
    r = boot(a, b, seed=0, draws=500)
    assert r["users"] == 3 and r["diff"] == pytest.approx(1 / 3)
    assert 0.0 <= r["lo"] <= r["diff"] <= r["hi"] <= 1.0
    assert r == boot(a, b, seed=0, draws=500)  # seeded: the same interval again
    # a constant difference of one has a degenerate interval at one
    assert boot(a, {"user_id": a["user_id"], "hr@10": [0, 0, -1, 0]}, 3)["lo"] == 1.0
    assert boot(a, {"user_id": ["x"], "hr@10": [1]}, 0) is None


def test_bootstrap_interval_covers_the_normal_approximation(bench):
    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(2000)]
    a = {"user_id": ids, "hr@10": (rng.random(2000) < 0.5).astype(int).tolist()}
    b = {"user_id": ids, "hr@10": (rng.random(2000) < 0.4).astype(int).tolist()}
    r = bench.stats.paired_bootstrap(a, b, seed=1)
    d = np.array(a["hr@10"]) - np.array(b["hr@10"])
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert r["hi"] - r["lo"] == pytest.approx(2 * half, rel=0.15)
    assert r["lo"] < d.mean() < r["hi"]


def _report(hr: dict[str, float], new: float | None, pairs: int) -> dict:
    row = {
        "hr@10": 0.0,
        "recall@10": 0.0,
        "ndcg@10": 0.0,
        "mrr": 0.0,
        "coverage": 0.0,
        "users": 4,
        "cold": {"hr@10": 0.5, "users": 2},
        "new_items": {"pairs": pairs, "items": 1, "recall@10": new},
        "rare_items": {"pairs": 0, "items": 0, "recall@10": None},
    }
    return {"results": {m: {**row, "hr@10": v} for m, v in hr.items()}}


def test_aggregate_and_differences_cover_slices_and_lightgcn(bench):
    s = bench.stats
    reports = [
        _report({"2t": 0.4, "lightgcn": 0.5, "2t-hgnn": 0.5}, 0.25, 4),
        _report({"2t": 0.2, "lightgcn": 0.5, "2t-hgnn": 0.4}, None, 0),
        _report({"2t": 0.3, "lightgcn": 0.4, "2t-hgnn": 0.6}, 0.75, 8),
    ]
    agg = s.aggregate(reports)
    assert agg["2t"]["new_items"]["pairs"] == [4, 0, 8]
    assert agg["2t"]["new_items"]["recall@10"]["mean"] == pytest.approx(0.5)  # seeds with pairs
    assert agg["2t"]["rare_items"] == {"recall@10": None, "pairs": [0, 0, 0]}
    d = s.difference(reports, "2t-hgnn", "lightgcn")["all"]["diff"]
    assert d["mean"] == pytest.approx((0.0 - 0.1 + 0.2) / 3)
    assert s.difference(reports, "2t-hgnn", "oracle") == {}
    boots = s.bootstraps([{"bootstrap": {"a_vs_b": {"diff": 1}}}, {"bootstrap": {}}], [0, 1])
    assert boots == {"draws": s.DRAWS, "a_vs_b": [{"seed": 0, "diff": 1}]}


def test_set_values_are_json_or_strings_and_errors_name_the_form(bench):
    parse = bench.stats.parse_sets
    stages = bench.quality.STAGES
    got = parse(
        [
            "hgnn.epochs=6",
            "hgnn.fanout=[10, 5]",
            "graph.encoder=none",
            'split.downsample={"book": 0.2}',
            "twotower.logq=false",
        ],
        stages,
    )
    assert got == {
        "hgnn": {"epochs": 6, "fanout": [10, 5]},
        "graph": {"encoder": "none"},
        "split": {"downsample": {"book": 0.2}},
        "twotower": {"logq": False},
    }
    with pytest.raises(ValueError, match="STAGE.KEY=VALUE"):
        parse(["epochs=6"], stages)
    with pytest.raises(ValueError, match="unknown stage 'hgn'"):
        parse(["hgn.epochs=6"], stages)


def test_experiment_is_the_product_defaults_plus_the_target(bench, tmp_path):
    q = bench.quality
    exp = q.experiment("lastfm-vertical", {}, tmp_path / "d", tmp_path / "w", 3)
    assert exp["baseline"] == {} and exp["graph"] == {}
    assert exp["twotower"] == exp["hgnn"] == {"val_type": "vertical"}  # the launch type
    assert exp["evaluate"] == {"target_type": "vertical"}
    assert exp["split"] == {
        "retype": {"vertical": ["electronic"]},
        "adopters": {"vertical": 0.3},
        "new_items": {"vertical": 0.3},  # the new-item slice: >= 200 test pairs per seed
    }
    sets = {"hgnn": {"epochs": 6}, "split": {"label_fraction": 0.4}}
    exp = q.experiment("douban", sets, tmp_path / "d", tmp_path / "w", 0)
    assert exp["hgnn"] == {"val_type": "book", "epochs": 6}
    assert exp["graph"] == {"encoder": "none"}
    assert exp["split"] == {"downsample": {"book": 0.1}, "label_fraction": 0.4}
    assert q.parse_args(["--dataset", "synthetic"]).seeds == 5


TINY = [
    "--set",
    'graph.encoder="none"',
    "--set",
    "hgnn.epochs=1",
    "--set",
    "hgnn.hidden=8",
    "--set",
    "hgnn.fanout=[3, 2]",
    "--set",
    "hgnn.batch_size=64",
    "--set",
    "hgnn.eval_candidates=10",
    "--set",
    "hgnn.max_val_edges=50",
    "--set",
    "hgnn.max_epoch_edges=0",
    "--set",
    "twotower.epochs=1",
    "--set",
    "twotower.tower_dims=[16, 8]",
    "--set",
    "twotower.cat_dim=4",
    "--set",
    "twotower.batch_size=64",
    "--set",
    "evaluate.lightgcn_epochs=2",
]


@pytest.mark.slow
def test_tiny_run_writes_seed_reports_resumes_and_adds_the_oracle(bench, tmp_path, monkeypatch):
    q = bench.quality
    items = {"music": 40, "podcast": 20, "audiobook": 30}

    def oracle(data_dir, users, items_):
        assert Path(data_dir) == tmp_path / "data" and len(items_) > 0
        rng = np.random.default_rng(len(users))
        return rng.normal(size=(len(users), 3)), rng.normal(size=(items_.height, 3))

    fake = SimpleNamespace(
        oracle_vectors=oracle,
        prepare_synthetic=lambda out, **kw: prepare_synthetic(out, users=150, items=items, seed=0),
    )
    monkeypatch.setattr(q, "synthetic", fake)
    argv = ["--dataset", "synthetic", "--workdir", str(tmp_path), "--seeds", "2", "--json", *TINY]
    out = q.main(argv)
    assert set(out["results"]) == {*MODELS, "oracle"}  # every peer of the table
    for row in out["results"].values():
        assert set(row["new_items"]) == set(row["rare_items"]) == {"recall@10", "pairs"}
    assert {"2t-hgnn_vs_2t", "2t-hgnn_vs_lightgcn"} <= set(out)
    assert {"2t-hgnn_vs_ease", "hgnn_vs_graph-knn"} <= set(out["bootstrap"])
    assert [b["seed"] for b in out["bootstrap"]["2t-hgnn_vs_lightgcn"]] == [0, 1]
    assert out["config"]["set"]["hgnn"]["epochs"] == 1 and out["config"]["hgnn"]["epochs"] == 1
    assert "per_user" not in json.dumps(out)  # per-user outcomes stay in the work folder
    seed0 = json.loads((tmp_path / "seed0" / "report.json").read_text())
    assert len(seed0["results"]["2t"]["per_user"]["hr@10"]) == seed0["results"]["2t"]["users"]

    def no_run(*a, **k):
        raise AssertionError("a finished seed ran again")

    monkeypatch.setattr(q, "run_experiment", no_run)
    monkeypatch.setattr(q, "evaluate_run", no_run)
    again = q.main(argv)  # every seed reused from its report.json
    assert again["results"] == out["results"] and again["bootstrap"] == out["bootstrap"]
    monkeypatch.setattr(q, "synthetic", SimpleNamespace(prepare_synthetic=fake.prepare_synthetic))
    with pytest.raises(AssertionError, match="ran again"):  # no oracle now: settings differ
        q.main(argv)
