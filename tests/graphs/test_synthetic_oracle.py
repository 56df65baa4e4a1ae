"""The synthetic catalog's hidden truth and its oracle: cross-type latent tastes that the
text shows only in part (audiograph.graphs.adapters.synthetic)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.synthetic import oracle_vectors, prepare_synthetic
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.split import split_dataset
from audiograph.twotower.metrics import evaluate_vectors

CATALOG = {"users": 4000, "items": {"music": 800, "podcast": 400, "audiobook": 300}}
ALL = ("music", "podcast", "audiobook")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle") / "syn"
    prepare_synthetic(out, **CATALOG, seed=0, tastes=4)
    return out


def _hr(data, user_vecs, item_vecs, train, test) -> float:
    ds = read_dataset(data)
    res = evaluate_vectors(
        user_vecs, item_vecs, ds.users["user_id"], ds.items, train, test, "audiobook"
    )
    assert res["users"] > 80 and res["fallback_users"] < 0.1 * res["users"]
    return res["hr@10"]


def _history(users, items: pl.DataFrame, train, cell: np.ndarray, types: tuple[str, ...]):
    """``(user_vecs, item_vecs)``: one-hot item ``cell`` codes, summed over each user's
    training items of the item ``types``."""
    item_vecs = np.eye(int(cell.max()) + 1, dtype=np.float32)[cell]
    rows = items.select("item_id", "item_type").with_row_index("i")
    seen = train.join(rows, on="item_id").filter(pl.col("item_type").is_in(types))
    seen = seen.join(users.to_frame().with_row_index("u"), on="user_id")
    user_vecs = np.zeros((len(users), item_vecs.shape[1]), np.float32)
    np.add.at(user_vecs, seen["u"].to_numpy(), item_vecs[seen["i"].to_numpy()])
    return user_vecs, item_vecs


def test_the_oracle_is_far_above_text_and_leaves_a_cross_type_gap_for_a_graph(data):
    ds = read_dataset(data)
    users, items = ds.users["user_id"], ds.items
    pairs = ds.interactions.select("user_id", "item_id").unique(maintain_order=True)
    held = np.random.default_rng(0).random(pairs.height) < 0.2
    train, test = pairs.filter(~held), pairs.filter(held)
    hr = lambda vecs: _hr(data, *vecs, train, test)  # noqa: E731
    rng = np.random.default_rng(1)
    random = hr((rng.random((len(users), 8)), rng.random((items.height, 8))))
    # the text shows the topic: a text KNN is at best the topic mix of the user's history
    topic = hr(_history(users, items, train, items["topic"].to_numpy(), ALL))
    oracle = hr(oracle_vectors(data, users, items))
    cells = hr(oracle_vectors(data, users, items, popularity=False))
    assert topic > 2 * random
    assert oracle > 1.5 * topic and cells > 1.3 * topic
    # the true (topic, taste) cells of the user's music and podcasts (what co-listening
    # can recover, the text cannot) predict their audiobooks far better than the topics
    truth = pl.read_parquet(data / "truth" / "items.parquet")
    assert truth["item_id"].equals(items["item_id"])
    cell = (truth["topic"] * 4 + truth["taste"]).to_numpy()
    cross = hr(_history(users, items, train, cell, ("music", "podcast")))
    assert cross > 1.15 * topic


def test_truth_is_a_side_file_no_reader_or_split_carries(data, tmp_path):
    ds = read_dataset(data)
    assert set(ds.files) == {"items", "interactions", "users", "queries"}
    truth_users = pl.read_parquet(data / "truth" / "users.parquet")
    truth_items = pl.read_parquet(data / "truth" / "items.parquet")
    assert truth_users["user_id"].equals(ds.users["user_id"])
    assert np.allclose(truth_users["topic_p"].list.sum().to_numpy(), 1.0)
    assert truth_users["taste"].list.len().eq(16).all()
    joined = truth_items.join(items := ds.items.select("item_id", "item_type"), on="item_id")
    share = joined.group_by("item_type", "topic", "taste").agg(pl.col("share").sum())["share"]
    assert np.allclose(share.to_numpy(), 1.0) and joined.height == items.height
    split_dataset(data, tmp_path / "split", method="random")
    assert not list((tmp_path / "split").rglob("truth*"))
    with pytest.raises(ContractError, match="not a synthetic dataset"):
        oracle_vectors(tmp_path / "split" / "train", ds.users["user_id"], ds.items)


def test_oracle_vectors_follow_the_ids_asked_for(data):
    ds = read_dataset(data)
    users = pl.Series("user_id", ["nobody", "u3", "u0"])
    items = ds.items.select("item_id")[[5, 0]].vstack(pl.DataFrame({"item_id": ["none:1"]}))
    uv, iv = oracle_vectors(data, users, items)
    assert uv.dtype == iv.dtype == np.float32 and uv.shape == (3, 64) and iv.shape == (3, 64)
    full_u, full_i = oracle_vectors(data, ds.users["user_id"], ds.items)
    assert not uv[0].any() and (uv[1] == full_u[3]).all() and (uv[2] == full_u[0]).all()
    assert (iv[0] == full_i[5]).all() and (iv[1] == full_i[0]).all() and not iv[2].any()
    assert np.allclose(uv[1:].sum(1), 1.0)  # a user's cell chances sum to 1
    assert ((iv[:2] > 0).sum(1) == 1).all()  # an item lies in one cell


def test_same_seed_gives_identical_frames_and_truth(tmp_path):
    small = {"users": 300, "items": {"music": 100, "podcast": 50, "audiobook": 20}}
    for name, seed in (("a", 4), ("b", 4), ("c", 5), ("a", 4)):  # re-preparing replaces a
        prepare_synthetic(tmp_path / name, **small, seed=seed, tastes=3)
    files = ["items", "interactions", "users", "queries", "truth/users", "truth/items"]
    read = lambda d, f: pl.read_parquet(tmp_path / d / f"{f}.parquet")  # noqa: E731
    assert all(read("a", f).equals(read("b", f)) for f in files)
    assert not any(read("a", f).equals(read("c", f)) for f in files)
