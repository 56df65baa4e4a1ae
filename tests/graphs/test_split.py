"""Train/test splits and per-type downsampling (audiograph.graphs.split)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.split import downsample_type, split_dataset

PAIR = ["user_id", "item_id"]
COLS = ["user_id", "item_id", "weight", "signal", "ts"]


def _source(data_root: Path, name: str) -> Path:
    src = data_root / name
    if not src.is_dir():
        pytest.skip(f"real data not found at {src}")
    return src


@pytest.fixture(scope="module")
def douban(tmp_path_factory, data_root) -> Path:
    out = tmp_path_factory.mktemp("douban") / "ds"
    prepare_douban(_source(data_root, "douban-music-book"), out)
    return out


@pytest.fixture(scope="module")
def douban_split(tmp_path_factory, douban) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("douban-split") / "split"
    return split_dataset(douban, out, test_fraction=0.2, seed=0), out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    prepare_synthetic(out, users=300, items={"music": 200, "podcast": 100, "audiobook": 30})
    return out


def _sides(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    train, test = (read_dataset(out / s).interactions for s in ("train", "test"))
    assert train is not None and test is not None
    return train, test


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(COLS).sort(COLS, nulls_last=True)


def _expected_test_pairs(inter: pl.DataFrame, fraction: float) -> int:
    n = inter.select(PAIR).unique().group_by("user_id").len()["len"].to_numpy()
    held = np.clip(np.floor(n * fraction + 0.5).astype(int), 1, n - 1)
    return int(held[n >= 2].sum())


def test_douban_random_split_counts_and_invariants(douban, douban_split):
    manifest, out = douban_split
    original = read_dataset(douban)
    train, test = _sides(out)
    assert manifest["kind"] == "split" and manifest["method"] == "random"
    assert manifest["cut_ts"] is None and manifest["seed"] == 0
    # exact counts (the number held out per user does not depend on the seed)
    assert (train.height, test.height) == (132_567, 33_183)
    assert test.height == _expected_test_pairs(original.interactions, 0.2)
    assert manifest["test"]["per_type"] == {
        "book": {"interactions": 19_270, "pairs": 19_270},
        "music": {"interactions": 13_913, "pairs": 13_913},
    }
    assert manifest["train"]["users"] == 2_216 and manifest["test"]["users"] == 2_085
    sealed = json.loads((out / "manifest.json").read_text())
    assert sealed.pop("writer") == "audiograph" and "train/items.parquet" in sealed.pop("files")
    assert sealed == manifest
    # disjoint pairs, and train + test = the original rows
    assert train.join(test, on=PAIR).height == 0
    assert _sorted(pl.concat([train, test])).equals(_sorted(original.interactions))
    # users with one item stay in train; everybody else keeps >= 1 item in train
    assert set(test["user_id"]) <= set(train["user_id"])
    # items are copied to both sides
    for side in ("train", "test"):
        assert read_dataset(out / side).items.equals(original.items)


def test_random_split_is_seeded_and_independent_of_row_order(douban, douban_split, tmp_path):
    _, out = douban_split
    ds = read_dataset(douban)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    write_dataset(shuffled, ds.items, ds.interactions.sample(fraction=1.0, shuffle=True, seed=3))
    split_dataset(shuffled, tmp_path / "s0", seed=0)
    split_dataset(douban, tmp_path / "s1", seed=1)
    test0, test_shuffled, test1 = (
        _sorted(_sides(p)[1]) for p in (out, tmp_path / "s0", tmp_path / "s1")
    )
    assert test_shuffled.equals(test0)
    assert test1.height == test0.height and not test1.equals(test0)


def test_lastfm_split_keeps_every_signal_of_a_held_out_pair_in_test(data_root, tmp_path):
    ds_dir = tmp_path / "lastfm"
    prepare_lastfm(_source(data_root, "lastfm-hetrec-2k"), ds_dir)
    original = read_dataset(ds_dir).interactions
    manifest = split_dataset(ds_dir, tmp_path / "split", seed=0)
    train, test = _sides(tmp_path / "split")
    assert manifest["method"] == "random"  # stream rows have no ts
    assert (manifest["train"]["interactions"], manifest["test"]["interactions"]) == (
        130_569,
        32_562,
    )
    assert manifest["test"]["pairs"] == 28_407 == _expected_test_pairs(original, 0.2)
    assert train.join(test, on=PAIR).height == 0  # no pair on both sides, whatever signal
    both = test.group_by(PAIR).agg(pl.col("signal").n_unique().alias("s"))
    assert both.filter(pl.col("s") == 2).height > 1000  # stream + tag pairs moved together
    with pytest.raises(ContractError, match=r"interactions.parquet, column 'ts'.*row \d+"):
        split_dataset(ds_dir, tmp_path / "temporal", method="temporal")
    assert not (tmp_path / "temporal").exists()


def test_temporal_split_respects_the_cut(synthetic, tmp_path):
    manifest = split_dataset(synthetic, tmp_path / "split", test_fraction=0.25, quiet=False)
    train, test = _sides(tmp_path / "split")
    ts = read_dataset(synthetic).interactions["ts"]
    cut = manifest["cut_ts"]
    assert manifest["method"] == "temporal" and cut in set(ts)
    assert train["ts"].max() < cut <= test["ts"].min()
    assert train.height + test.height == ts.len()
    assert abs(test.height / ts.len() - 0.25) < 0.01
    assert manifest["test"]["interactions"] == test.height
    users = read_dataset(tmp_path / "split" / "test").users
    assert users is not None and users.equals(read_dataset(synthetic).users)
    # forcing the random method on timestamped data works too
    assert split_dataset(synthetic, tmp_path / "r", method="random")["method"] == "random"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"test_fraction": 1.0}, "test-fraction"), ({"method": "sideways"}, "method")],
)
def test_split_rejects_bad_arguments(synthetic, tmp_path, kwargs, match):
    with pytest.raises(ContractError, match=match):
        split_dataset(synthetic, tmp_path / "out", **kwargs)


def test_downsample_type_keeps_whole_pairs(douban):
    ds = read_dataset(douban)
    inter, items = ds.interactions, ds.items
    kept = downsample_type(inter, items, "book", 0.1, seed=0)
    book_ids = items.filter(pl.col("item_type") == "book").select("item_id")
    books = kept.join(book_ids, on="item_id")
    assert books.height == 9_604  # round(0.1 * 96_041)
    assert kept.height - books.height == inter.join(book_ids, on="item_id", how="anti").height
    assert kept.join(inter, on=PAIR, how="anti").height == 0  # a subset of the rows
    assert kept.equals(downsample_type(inter, items, "book", 0.1, seed=0))
    shuffled = inter.sample(fraction=1.0, shuffle=True, seed=1)
    assert _sorted(downsample_type(shuffled, items, "book", 0.1, seed=0)).equals(_sorted(kept))
    assert not kept.equals(downsample_type(inter, items, "book", 0.1, seed=1))
    assert downsample_type(inter, items, "book", 1.0, seed=0).equals(inter)
    with pytest.raises(ContractError, match="'item_type'.*'podcast'"):
        downsample_type(inter, items, "podcast", 0.1, seed=0)
    with pytest.raises(ContractError, match="keep"):
        downsample_type(inter, items, "book", 1.5, seed=0)


def test_downsample_type_takes_all_signals_of_a_pair():
    items = pl.DataFrame({"item_id": ["a", "b", "m"], "item_type": ["x", "x", "y"], "title": ""})
    inter = pl.DataFrame(
        {
            "user_id": ["u", "u", "u", "v", "v"],
            "item_id": ["a", "a", "m", "b", "a"],
            "signal": ["stream", "tag", "stream", "stream", "stream"],
        }
    )
    for seed in range(5):
        kept = downsample_type(inter, items, "x", 0.5, seed=seed)
        pairs = kept.filter(pl.col("item_id") != "m").select(PAIR).unique()
        assert pairs.height == 2  # round(0.5 * 3)
        assert kept.filter(pl.col("item_id") == "m").height == 1
        if kept.filter((pl.col("user_id") == "u") & (pl.col("item_id") == "a")).height:
            assert kept.filter(pl.col("item_id") == "a", pl.col("user_id") == "u").height == 2


def test_queries_are_split_per_item(synthetic, tmp_path):
    manifest = split_dataset(synthetic, tmp_path / "split", test_fraction=0.25, seed=3)
    q = read_dataset(synthetic).queries
    assert q is not None and q.height > 0
    tr, te = (read_dataset(tmp_path / "split" / s).queries for s in ("train", "test"))
    assert tr is not None and te is not None
    key = ["query", "item_id"]
    assert tr.join(te, on=key, how="inner").height == 0  # disjoint
    assert pl.concat([tr, te]).sort(key).equals(q.select(key).sort(key))  # complete
    n = q.group_by("item_id").len()["len"].to_numpy()
    held = np.clip(np.floor(n * 0.25 + 0.5).astype(int), 1, n - 1)
    assert te.height == int(held[n >= 2].sum()) == manifest["test"]["queries"]
    # an item's only query stays in train; a held-out query never empties an item
    assert set(te["item_id"]) <= set(tr["item_id"])


def test_new_items_have_no_training_row_and_keep_their_test_pairs(synthetic, tmp_path):
    """``new_items``: round(share * N) of the type's items lose every training row (fit,
    labels, train); their test rows stay, counted in the manifest; other items untouched."""
    plain = split_dataset(synthetic, tmp_path / "a", seed=1)
    m = split_dataset(synthetic, tmp_path / "b", seed=1, new_items={"audiobook": 0.2})
    entry = m["new_items"]["audiobook"]
    assert entry["share"] == 0.2 and entry["items"] == 6  # round(0.2 * 30)
    (train_a, test_a), (train_b, test_b) = _sides(tmp_path / "a"), _sides(tmp_path / "b")
    new_ids = set(train_a["item_id"]) - set(train_b["item_id"])
    assert 0 < len(new_ids) <= 6 and all(i.startswith("audiobook:") for i in new_ids)
    for part in ("fit", "labels", "train"):
        rows = read_dataset(tmp_path / "b" / part).interactions
        assert not set(rows["item_id"]) & new_ids
    dropped = train_a.filter(pl.col("item_id").is_in(list(new_ids)))
    assert entry["rows_dropped"] == dropped.height == train_a.height - train_b.height
    assert _sorted(test_a).equals(_sorted(test_b))  # the test part is the same
    in_test = test_b.filter(pl.col("item_id").is_in(list(new_ids))).select(PAIR).unique()
    assert entry["test_pairs"] >= in_test.height > 0
    assert (
        m["new_items"]
        == split_dataset(synthetic, tmp_path / "c", seed=1, new_items={"audiobook": 0.2})[
            "new_items"
        ]
    )  # seeded
    assert plain["new_items"] == {}
    with pytest.raises(ContractError, match="new-items audiobook"):
        split_dataset(synthetic, tmp_path / "d", new_items={"audiobook": 1.0})
