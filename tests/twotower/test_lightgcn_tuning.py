"""LightGCN tuned on validation only: a deterministic pick from the grid, made from the
split's fit and label windows, never from the test interactions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import audiograph.twotower.evaluate as ev
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.split import split_dataset
from audiograph.twotower.config import EvaluationConfig, LightGCNConfig
from audiograph.twotower.lightgcn_tune import ValidationRecall, tune_lightgcn
from audiograph.twotower.metrics import evaluate_vectors, ranking_pairs

BASE = LightGCNConfig(layers=2, lr=0.1, batch=1024, seed=3)  # fast: peaks within 12 epochs
GRID = {"dims": (8, 16), "negatives": ("type", "all"), "max_epochs": 12, "patience": 2}
FAST = {"lightgcn_dims": [8, 16], "lightgcn_max_epochs": 6, "lightgcn_patience": 2}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("lgtune")
    items = {"music": 150, "podcast": 80, "audiobook": 30}
    prepare_synthetic(root / "ds", users=300, items=items, seed=4)
    split_dataset(root / "ds", root / "split", seed=0, method="random")
    return root


def _fake_run(root, data_dir, name="run"):
    """A two-tower run folder as far as evaluating the baselines reads it."""
    run = root / name
    run.mkdir(exist_ok=True)
    config = {
        "kind": "twotower-run",
        "format_version": FORMAT_VERSION,
        "data_dir": str(data_dir),
        "train": {"seed": 3},
    }
    (run / "config.json").write_text(json.dumps(config))
    return run


def _tune(root, seed=3):
    fit, labels = (read_dataset(root / "split" / p) for p in ("fit", "labels"))
    base = replace(BASE, seed=seed)
    return tune_lightgcn(fit.interactions, labels.interactions, fit.items, "music", base, **GRID)


def _without_seconds(report):
    return {k: v for k, v in report.items() if k != "seconds"}


def test_tuning_picks_the_best_grid_point_and_epoch_deterministically(split):
    tuned = _tune(split)
    rep = tuned.report()
    assert rep["tuned"] and rep["metric"] == "recall@10"
    assert list(rep["validation"]) == [
        f"dim={d} negatives={n} reg=0.0001" for d in (8, 16) for n in ("type", "all")
    ]
    curves = list(tuned.curves.values())
    assert all(1 <= len(c) <= 12 for c in curves) and min(map(len, curves)) < 12
    # early stop: a curve shorter than the cap ended `patience` epochs after its best, and
    # not before twice `patience`
    for c in curves:
        best_epoch = max(range(len(c)), key=lambda e: (c[e], -e)) + 1
        assert len(c) == 12 or len(c) == max(best_epoch + 2, 4)
    # the chosen point is the first of the best: earlier point, fewer epochs on ties
    best = max(max(c) for c in curves)
    first = next(i for i, c in enumerate(curves) if max(c) == best)
    chosen = tuned.chosen
    assert tuned.best == best
    assert (chosen.dim, chosen.negatives) == ((8, 16)[first // 2], ("type", "all")[first % 2])
    assert chosen.epochs == curves[first].index(best) + 1
    assert (chosen.layers, chosen.lr, chosen.batch, chosen.seed) == (2, 0.1, 1024, 3)
    # the same seed gives the same curves and the same choice
    assert _without_seconds(_tune(split).report()) == _without_seconds(rep)


def test_one_item_type_tries_one_negatives_setting(split):
    fit, labels = (read_dataset(split / "split" / p) for p in ("fit", "labels"))
    items = fit.items.with_columns(item_type=pl.lit("music"))
    tuned = tune_lightgcn(
        fit.interactions, labels.interactions, items, "music", BASE, **{**GRID, "max_epochs": 2}
    )
    assert list(tuned.curves) == [
        "dim=8 negatives=type reg=0.0001",
        "dim=16 negatives=type reg=0.0001",
    ]


def test_no_new_label_pair_of_the_target_type_is_named(split):
    fit, labels = (read_dataset(split / "split" / p) for p in ("fit", "labels"))
    no_music = labels.interactions.join(
        fit.items.filter(pl.col("item_type") == "music").select("item_id"),
        on="item_id",
        how="anti",
    )
    with pytest.raises(ContractError, match="no new 'music' pair"):
        tune_lightgcn(fit.interactions, no_music, fit.items, "music", BASE, **GRID)


def test_evaluate_tunes_on_validation_refits_on_train_and_never_reads_the_test(
    split, tmp_path, monkeypatch
):
    run = _fake_run(tmp_path, split / "split" / "train")
    # a second test set: other users' rows only, in another order
    test = read_dataset(split / "split" / "test")
    other = test.interactions.filter(pl.col("user_id").hash(1) % 2 == 0).reverse()
    (tmp_path / "other-test").mkdir()
    write_dataset(tmp_path / "other-test", test.items, other, test.users)
    fitted = []
    real = ev.lightgcn
    monkeypatch.setattr(ev, "lightgcn", lambda *a: fitted.append(a) or real(*a))

    def run_eval(test_dir):
        return ev.evaluate_run(run, test_dir, models=("lightgcn",), target_type="music", **FAST)

    a, b = run_eval(split / "split" / "test"), run_eval(tmp_path / "other-test")
    assert a["lightgcn"]["tuned"] and _without_seconds(a["lightgcn"]) == _without_seconds(
        b["lightgcn"]
    )
    assert a["results"]["lightgcn"]["users"] != b["results"]["lightgcn"]["users"]
    # the refit: all of train, with the chosen settings and epoch count
    train = read_dataset(split / "split" / "train").interactions
    (tr, _, _, cfg), _ = fitted
    assert tr.equals(train)
    chosen = a["lightgcn"]["chosen"]
    assert (cfg.dim, cfg.negatives, cfg.reg, cfg.epochs, cfg.seed) == (
        chosen["dim"],
        chosen["negatives"],
        chosen["reg"],
        chosen["epochs"],
        3,
    )
    assert cfg.epochs <= 6


def lightgcn_report(run: Path, split: Path, **options: object) -> dict:
    """The evaluation of ``run`` with LightGCN alone (2 epochs, launch type music)."""
    test = split / "split" / "test"
    models = ("lightgcn",)
    return ev.evaluate_run(
        run, test, models=models, target_type="music", lightgcn_epochs=2, **options
    )


def test_without_windows_or_when_off_the_fixed_settings_are_reported(split, tmp_path):
    train = read_dataset(split / "split" / "train")  # the same rows, no windows
    (tmp_path / "plain").mkdir()
    write_dataset(tmp_path / "plain", train.items, train.interactions, train.users)
    whole = _fake_run(tmp_path, tmp_path / "plain", "whole")
    rep = lightgcn_report(whole, split)
    assert rep["lightgcn"] == {
        "tuned": False,
        "why": "fixed settings: no fit/label windows",
        "chosen": {"dim": 64, "negatives": "type", "reg": 1e-4, "epochs": 2},
    }
    off = _fake_run(tmp_path, split / "split" / "train", "off")
    rep = lightgcn_report(off, split, lightgcn_tune=False)
    assert rep["lightgcn"]["why"] == "fixed settings: lightgcn_tune is off"


@pytest.mark.parametrize(
    "bad",
    [
        {"lightgcn_dims": []},
        {"lightgcn_negatives": ["some"]},
        {"lightgcn_patience": 0},
        {"lightgcn_max_epochs": 0},
        {"lightgcn_dims": [0]},
    ],
)
def test_bad_tuning_settings_are_one_line_errors(bad):
    with pytest.raises(ContractError, match="lightgcn"):
        EvaluationConfig(**bad)


def test_the_per_epoch_recall_is_evaluate_vectors_recall(split):
    fit, labels = (read_dataset(split / "split" / p) for p in ("fit", "labels"))
    f, lab, items = fit.interactions, labels.interactions, fit.items
    users = pl.concat([f["user_id"], lab["user_id"]]).unique().sort()
    rng = np.random.default_rng(0)
    u = rng.normal(size=(len(users), 8)).astype(np.float32)
    i = rng.normal(size=(items.height, 8)).astype(np.float32)
    i[::3] = 0.0  # ties: a third of the items score 0 for everyone
    u[::5] = 0.0  # zero users: ranked by popularity (ties again)
    i[:, 0] = np.round(i[:, 0], 1)
    u[:, 1:] = 0.0  # scores = u0 * i0 with few distinct values: many ties at the cut
    for target in ("music", "audiobook"):
        for k in (1, 10):
            pairs = ranking_pairs(items, f, lab, target)
            recall = ValidationRecall(pairs, users, k, batch=100)
            want = evaluate_vectors(u, i, users, items, f, lab, target, k=k, batch=100)
            assert recall(u, i) == pytest.approx(want[f"recall@{k}"], abs=1e-12), (target, k)
