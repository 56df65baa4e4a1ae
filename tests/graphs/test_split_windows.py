"""The leak-free protocol of ``audiograph split``: fit and label windows, adopters, user tags
recounted per part; and the chain on top of it never reads the test part and never feeds
a two-tower positive into its own inputs."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import polars as pl
import pytest

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.split import split_dataset
from audiograph.graphs.thinning import round_half_up
from audiograph.hgnn.export import export_embeddings
from audiograph.hgnn.train import HGNNConfig, train_hgnn
from audiograph.twotower.config import TwoTowerConfig
from audiograph.twotower.train import train_twotower
from audiograph.twotower.training_data import prepare_windows

PAIR = ["user_id", "item_id"]
ITEMS = {"music": 60, "podcast": 30, "audiobook": 20}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("windows")
    prepare_synthetic(root / "data", users=300, items=ITEMS, seed=2)
    return root / "data"


def _pairs(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(PAIR).unique().sort(PAIR)


def _rows(path) -> pl.DataFrame:
    return read_dataset(path).interactions


@pytest.mark.parametrize("method", ["temporal", "random"])
def test_train_is_fit_plus_labels_with_whole_pairs(data, tmp_path, method):
    m = split_dataset(data, tmp_path / "s", method=method, label_fraction=0.25, seed=1)
    fit, labels, train = (_rows(tmp_path / "s" / p) for p in ("fit", "labels", "train"))
    cols = train.columns
    both = pl.concat([fit, labels]).sort(cols)
    assert both.equals(train.sort(cols))  # every training row in exactly one window
    assert _pairs(fit).join(_pairs(labels), on=PAIR).height == 0  # whole pairs
    assert m["fit"]["interactions"] + m["labels"]["interactions"] == m["train"]["interactions"]
    first = train.group_by(PAIR).agg(pl.col("ts").min())
    if method == "temporal":  # labels: pairs first seen at or after the label cut
        cut = m["label_cut_ts"]
        assert first.join(_pairs(labels), on=PAIR)["ts"].min() >= cut
        assert first.join(_pairs(fit), on=PAIR)["ts"].max() < cut
    else:  # per user, round_half_up(0.25 * n) of its n pairs (1 .. n - 1)
        n = _pairs(train).group_by("user_id").len("n")
        got = _pairs(labels).group_by("user_id").len("k")
        expect = n.with_columns(
            k=pl.col("n").map_elements(
                lambda x: min(max(round_half_up(0.25 * x), 1), x - 1), return_dtype=pl.Int64
            )
        ).filter(pl.col("k") > 0)
        assert expect.select("user_id", "k").sort("user_id").equals(got.sort("user_id"))
    assert (tmp_path / "s" / "train" / "manifest.json").read_text().count('"../fit"') == 1


def test_adopters_keep_the_type_for_a_share_of_its_users(data, tmp_path):
    base = split_dataset(data, tmp_path / "base", seed=3)
    m = split_dataset(data, tmp_path / "s", seed=3, adopters={"audiobook": 0.3})
    items = read_dataset(data).items.select("item_id", "item_type")
    books = pl.col("item_type") == "audiobook"
    before = _rows(tmp_path / "base" / "train").join(items, on="item_id").filter(books)
    after = _rows(tmp_path / "s" / "train").join(items, on="item_id").filter(books)
    users = before["user_id"].n_unique()
    assert after["user_id"].n_unique() == m["adopters"]["audiobook"]["adopters"]
    assert m["adopters"]["audiobook"]["adopters"] == round_half_up(0.3 * users)
    kept = after["user_id"].unique()
    # adopters keep all their book rows, the others none; other types untouched
    assert (
        before.filter(pl.col("user_id").is_in(kept.implode()))
        .sort(before.columns)
        .equals(after.sort(after.columns))
    )
    other = pl.col("item_type") != "audiobook"
    assert (
        _rows(tmp_path / "base" / "train").join(items, on="item_id").filter(other).height
        == _rows(tmp_path / "s" / "train").join(items, on="item_id").filter(other).height
    )
    # the test part keeps every held-out interaction of the type
    assert _rows(tmp_path / "s" / "test").equals(_rows(tmp_path / "base" / "test"))
    assert base["test"] == m["test"]


def test_user_tags_are_recounted_from_each_parts_rows(tmp_path):
    items = pl.DataFrame(
        {
            "item_id": ["a", "b"],
            "item_type": "artist",
            "title": ["A", "B"],
            "tags": [["rock", "secret"], ["pop"]],
        }
    )
    users = [f"u{i}" for i in range(6)]
    rows = pl.DataFrame(
        {
            "user_id": users + users,
            "item_id": ["a"] * 6 + ["b"] * 6,
            "signal": "tag",
            "ts": list(range(100, 112)),
            "tags": [["rock"]] * 5 + [["secret"]] + [["pop"]] * 6,
        }
    )
    (tmp_path / "d").mkdir()
    write_dataset(tmp_path / "d", items, rows)
    # temporal: test = ts >= 109 (the 0.8 quantile, nearest): u3..u5 on b; the label window
    # (0.8 quantile of the training ts: >= 106) = u0..u2 on b; fit = every row on a
    m = split_dataset(tmp_path / "d", tmp_path / "s", test_fraction=0.2, method="temporal")
    assert m["user_tags_recounted"] and (m["cut_ts"], m["label_cut_ts"]) == (109, 106)
    tags = {
        p: dict(read_dataset(tmp_path / "s" / p).items.select("item_id", "tags").iter_rows())
        for p in ("fit", "labels", "train", "test")
    }
    assert tags["train"] == {"a": ["rock", "secret"], "b": ["pop"]}
    assert tags["fit"] == {"a": ["rock", "secret"], "b": []}
    assert tags["labels"] == {"a": [], "b": ["pop"]}
    assert tags["test"] == {"a": [], "b": ["pop"]}
    # a tag given only in the test period never reaches a training part
    rows2 = rows.with_columns(
        tags=pl.when(pl.col("ts") == 111).then(pl.lit(["leak"])).otherwise(pl.col("tags"))
    )
    write_dataset(tmp_path / "d", items, rows2)
    split_dataset(tmp_path / "d", tmp_path / "s2", test_fraction=0.2, method="temporal")
    for part in ("fit", "labels", "train"):
        text = read_dataset(tmp_path / "s2" / part).items["tags"].explode().to_list()
        assert "leak" not in text
    assert "leak" in read_dataset(tmp_path / "s2" / "test").items["tags"].explode().to_list()


def test_tag_queries_follow_the_interactions(tmp_path):
    """Queries that are user tags: a pair tagged on the train side is a train query; one
    tagged only in test is a test query when its tag is a train query; no test query's
    (tag, item) is in the train side's item text."""
    items = pl.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "item_type": "artist",
            "title": ["A", "B", "C"],
            "tags": [[], [], []],
        }
    )
    rows = pl.DataFrame(
        {
            "user_id": ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"],
            "item_id": ["a", "a", "b", "b", "c", "c", "a", "b", "c", "c"],
            "signal": "tag",
            "ts": list(range(100, 110)),  # test: ts >= 108 (u8, u9 on c)
            "tags": [
                ["rock"],
                ["rock"],
                ["pop"],
                ["rock"],
                ["jazz"],
                ["pop"],
                ["pop"],
                ["pop"],
                ["rock", "pop"],
                ["solo"],
            ],
        }
    )
    queries = pl.DataFrame(
        {
            "query": ["rock", "rock", "pop", "pop", "pop", "rock", "jazz", "solo"],
            "item_id": ["a", "b", "a", "b", "c", "c", "c", "c"],
        }
    )
    (tmp_path / "d").mkdir()
    write_dataset(tmp_path / "d", items, rows, queries=queries)
    m = split_dataset(tmp_path / "d", tmp_path / "s", test_fraction=0.2, method="temporal")
    q = {p: sorted(read_dataset(tmp_path / "s" / p).queries.iter_rows()) for p in ("train", "test")}
    assert q["train"] == [
        ("jazz", "c"),
        ("pop", "a"),
        ("pop", "b"),
        ("pop", "c"),
        ("rock", "a"),
        ("rock", "b"),
    ]
    assert q["test"] == [("rock", "c")]  # pop on c is known from train; solo is no train query
    assert (m["train"]["queries"], m["test"]["queries"]) == (6, 1)
    text = dict(read_dataset(tmp_path / "s" / "train").items.select("item_id", "tags").iter_rows())
    assert all(tag not in text[item] for tag, item in q["test"])


def _chain(split, out, cache) -> dict[str, bytes]:
    """train → graph → HGNN → embeddings → two-tower (epochs chosen on the windows, refitted
    on all of train); the bytes of every training artifact."""
    build_graph(split / "train", out / "g", GraphConfig(encoder="none"), quiet=True)
    hgnn = HGNNConfig(
        epochs=1,
        max_epoch_edges=2000,
        hidden=8,
        fanout=[3, 2],
        prefetch=0,
        eval_candidates=10,
        max_val_edges=50,
    )
    train_hgnn(out / "g", out / "h", hgnn, quiet=True)
    export_embeddings(out / "h", out / "e", catalog=split / "train", quiet=True)
    cfg = TwoTowerConfig(
        epochs=1,
        tower_dims=[16, 8],
        cat_dim=4,
        batch_size=64,
        cache_dir=str(cache),
        val_type="audiobook",
    )
    train_twotower(split / "train", out / "e", out / "t", cfg, quiet=True)
    files = [
        "g/graph.safetensors",
        "g/nodes.parquet",
        "h/model.safetensors",
        "e/embeddings.npy",
        "e/ids.parquet",
        "t/model.safetensors",
    ]
    return {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in files}


def test_training_artifacts_do_not_depend_on_the_test_part(data, tmp_path):
    split_dataset(data, tmp_path / "s", seed=0)
    a = _chain(tmp_path / "s", tmp_path / "a", tmp_path / "cache")
    shutil.rmtree(tmp_path / "s" / "test")  # delete the test part, then train again
    b = _chain(tmp_path / "s", tmp_path / "b", tmp_path / "cache")
    assert a == b


def test_no_label_is_an_input_of_the_two_tower(data, tmp_path):
    split_dataset(data, tmp_path / "s", seed=0, label_fraction=0.3)
    fit, labels = read_dataset(tmp_path / "s" / "fit"), _rows(tmp_path / "s" / "labels")
    cfg = TwoTowerConfig(use_hgnn=False, tower_dims=[16, 8], cache_dir=str(tmp_path / "c"))
    d = prepare_windows(fit, labels, None, cfg)
    items = fit.items["item_id"]
    (ucat, _), (pu, pi) = d.epoch_pairs(0)
    positives = set(zip(pu.tolist(), pi.tolist(), strict=True))
    assert positives and d.epoch_pairs(5)[1][1].tolist() == pi.tolist()  # fixed positives
    # every positive is a label-window pair that is not in the fit window (graph, history)
    fit_pairs = set(_pairs(fit.interactions).iter_rows())
    label_pairs = set(_pairs(labels).iter_rows())
    train_users = d.train_inter["user_id"].unique().sort()  # rows of pu
    assert len(train_users) == int(pu.max()) + 1 == ucat.shape[0]
    for u, i in positives:
        pair = (train_users[u], items[i])
        assert pair in label_pairs and pair not in fit_pairs
    # popularity input (first dense column): log1p of distinct fit users, labels not counted
    pop = fit.interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n"))
    expect = items.to_frame().join(pop, on="item_id", how="left")["n"].fill_null(0)
    np.testing.assert_allclose(d.item[1][:, 0].numpy(), np.log1p(expect.to_numpy()), rtol=1e-6)


def test_validation_users_label_pairs_stay_out_of_the_graph_part(data, tmp_path):
    """The graph is built from train minus the validation users' label-window pairs, so
    the two-tower's epochs are chosen on pairs no graph model saw; those users validate
    and never train in the selection."""
    m = split_dataset(data, tmp_path / "s", seed=3)
    val = pl.read_parquet(tmp_path / "s" / "validation_users.parquet")["user_id"]
    labels, train, graph = (_rows(tmp_path / "s" / p) for p in ("labels", "train", "graph"))
    typed = _pairs(labels).join(read_dataset(data).items, on="item_id")
    for t, n in typed.group_by("item_type").agg(pl.col("user_id").n_unique()).iter_rows():
        chosen = typed.filter((pl.col("item_type") == t) & pl.col("user_id").is_in(val.implode()))
        want = min(max(round(0.1 * n), min(100, n // 2)), n)  # more: chosen for another type
        assert want <= chosen["user_id"].n_unique() < n
    assert m["validation_users"] == val.len() > 0
    held = _pairs(labels.filter(pl.col("user_id").is_in(val.implode())))
    assert _pairs(graph).join(held, on=PAIR).height == 0  # none of their label pairs
    assert _pairs(pl.concat([_pairs(graph), held])).equals(_pairs(train))  # all else kept
    cfg = TwoTowerConfig(use_hgnn=False, tower_dims=[16, 8], cache_dir=str(tmp_path / "c"))
    fit = read_dataset(tmp_path / "s" / "fit")
    d = prepare_windows(fit, labels, None, cfg, val_ids=val, spec=None)
    trained = set(d.train_inter["user_id"].to_list())
    assert trained and not trained & set(val.to_list())
    # validation ranks only items some training row shows released before the cut
    released = set(fit.interactions["item_id"]) | set(labels["item_id"])
    want = [i in released for i in fit.items["item_id"]]
    assert d.val_allowed.tolist() == want and not all(want)
