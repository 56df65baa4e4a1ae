"""The refit protocol: the two-tower's epochs are chosen on the split's windows, then a
fresh model learns from every pair of train (the pairs LightGCN is fitted on), and no
training example ever sees its own target in its input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.split import split_dataset
from audiograph.twotower import TwoTowerConfig, train_twotower
from audiograph.twotower.training_data import prepare

PAIR = ["user_id", "item_id"]
SMALL = {"tower_dims": [16, 8], "cat_dim": 4, "batch_size": 64, "seed": 2, "use_hgnn": False}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("refit")
    prepare_synthetic(root / "d", users=200, items={"music": 60, "podcast": 30, "audiobook": 12})
    split_dataset(root / "d", root / "s", seed=0)
    return root / "s"


def test_no_positive_is_in_its_own_users_history_input(split, tmp_path):
    """Each epoch's history/label split, checked on the user tower's input itself: with
    one-hot item vectors a history block is non-zero exactly at the history's items."""
    train = read_dataset(split / "train")
    cfg = TwoTowerConfig(**SMALL, cache_dir=str(tmp_path / "c"))
    d = prepare(train, None, cfg, validate=False)
    n_items = train.items.height
    d.hist_vectors = np.eye(n_items, dtype=np.float32)
    d.spec.history_dim = n_items
    k, lo = len(d.spec.history_keys), len(d.spec.user_numeric)
    assert len(d.val_user[0]) == 0  # the refit holds no user out
    seen = set()
    for epoch in range(3):
        (_, dense), (pu, pi) = d.epoch_pairs(epoch)
        blocks = dense[:, lo : lo + k * n_items].view(-1, k, n_items)
        in_history = (blocks != 0).any(dim=1)  # [users, items]
        assert len(pu) > 0 and not in_history[pu, pi].any()
        # nor among the items the history attention reads (the last 3 L columns)
        length = d.spec.history_items
        rows = dense[:, dense.shape[1] - 3 * length :][:, :length].long()
        assert length and not (rows[pu] == pi[:, None]).any()
        # every user row also has a history (its other items)
        assert in_history[pu].any(dim=1).all()
        seen |= set(zip(pu.tolist(), pi.tolist(), strict=True))
    assert len(seen) > len(pu)  # fresh labels per epoch


def test_refit_trains_on_every_train_pair_for_the_chosen_epochs(split, tmp_path):
    cfg = TwoTowerConfig(**SMALL, epochs=4, patience=2, cache_dir=str(tmp_path / "c"))
    last = train_twotower(split / "train", None, tmp_path / "run", cfg, quiet=True)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    sel = config["selection"]
    assert sel["epochs"] == sel["best_epoch"] + 1 <= 4
    assert sel["best_epoch"] == int(np.argmax(sel["val_recall@10"]))
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == sel["epochs"] and last["best_epoch"] == sel["best_epoch"]
    assert [json.loads(x)["val_recall@10"] for x in lines] == sel["val_recall@10"][: len(lines)]
    # the refit's training interactions are the train part's (what LightGCN is fitted on)
    train = read_dataset(split / "train")
    d = prepare(train, None, TwoTowerConfig(**SMALL, cache_dir=str(tmp_path / "c")), validate=False)
    pairs = d.train_inter.select(PAIR).unique().sort(PAIR)
    assert pairs.equals(train.interactions.select(PAIR).unique().sort(PAIR))
    fit = read_dataset(split / "fit").interactions.select(PAIR).unique()
    assert pairs.height > fit.height  # more than the fit window: the label window too
    # refit=False keeps the model trained on the windows (no selection record)
    off = TwoTowerConfig(**SMALL, epochs=2, refit=False, cache_dir=str(tmp_path / "c"))
    train_twotower(split / "train", None, tmp_path / "off", off, quiet=True)
    assert json.loads((tmp_path / "off" / "config.json").read_text())["selection"] is None
    assert pl.read_ndjson(tmp_path / "off" / "metrics.jsonl").height == 2


def test_a_switch_chosen_on_validation_is_recorded_and_is_the_runs_model(split, tmp_path):
    cfg = TwoTowerConfig(**SMALL, epochs=3, patience=2, cache_dir=str(tmp_path / "c"))
    assert cfg.choose == ["skip"] and cfg.skip
    train_twotower(split / "train", None, tmp_path / "run", cfg, quiet=True)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    sel = config["selection"]
    assert set(sel["tried"]) == {"skip=True", "skip=False"}
    best = max(sel["tried"], key=lambda k: (sel["tried"][k], k == "skip=True"))
    assert sel["chosen"] == {"skip": best == "skip=True"}
    assert max(sel["val_recall@10"]) == sel["tried"][best]  # the winner's curve is kept
    assert config["train"]["skip"] == sel["chosen"]["skip"]  # what serving rebuilds
    # choose = []: one selection run, the settings as given
    fixed = TwoTowerConfig(**SMALL, epochs=2, choose=[], cache_dir=str(tmp_path / "c"))
    train_twotower(split / "train", None, tmp_path / "fixed", fixed, quiet=True)
    sel = json.loads((tmp_path / "fixed" / "config.json").read_text())["selection"]
    assert list(sel["tried"]) == ["as given"] and sel["chosen"] == {}
