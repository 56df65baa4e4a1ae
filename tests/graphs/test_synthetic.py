"""Tests of the embedded synthetic dataset (audiograph.graphs.adapters.synthetic)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.synthetic import (
    DEFAULT_ITEMS,
    T0,
    WINDOW_S,
    generate_synthetic,
    parse_item_counts,
    prepare_synthetic,
    topic_table,
)
from audiograph.graphs.adapters.synthetic_vocab import COUNTRIES, STYLES, TOPICS
from audiograph.graphs.contract import read_dataset

SMALL = {"users": 400, "items": {"music": 300, "podcast": 120, "audiobook": 40}}


@pytest.fixture(scope="module")
def default() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return generate_synthetic()


@pytest.fixture(scope="module")
def joined(default) -> pl.DataFrame:
    items, inter, _, _ = default
    return inter.join(items.select("item_id", "item_type", "topic"), on="item_id")


def test_same_seed_gives_identical_frames_and_other_seed_differs():
    a, b, c = (generate_synthetic(**SMALL, seed=s) for s in (7, 7, 8))
    for fa, fb in zip(a, b, strict=True):
        assert fa.equals(fb)
    assert not any(fa.equals(fc) for fa, fc in zip(a, c, strict=True))


def test_prepare_writes_a_valid_dataset(tmp_path):
    manifest = prepare_synthetic(tmp_path / "syn", **SMALL, seed=3)
    ds = read_dataset(tmp_path / "syn")
    assert manifest["source"] == "synthetic"
    assert manifest["items_per_type"] == SMALL["items"]
    assert manifest["counts"] == {
        "items": ds.items.height,
        "interactions": ds.interactions.height,
        "users": ds.users.height,
        "queries": ds.queries.height,
    }
    sealed = json.loads((tmp_path / "syn" / "manifest.json").read_text())
    assert sealed.pop("writer") == "audiograph"
    assert sealed.pop("files") == [
        "interactions.parquet",
        "items.parquet",
        "queries.parquet",
        "truth/items.parquet",
        "truth/users.parquet",
        "users.parquet",
    ]
    assert sealed == manifest
    assert manifest["summary"]["seed"] == 3
    assert set(manifest["summary"]["rows_per_signal"]) == {"stream", "follow", "preview"}
    assert ds.item_types == ["music", "podcast", "audiobook"]
    assert ds.items.schema["topic"] == pl.Int64  # kept as an item feature column
    assert ds.interactions["ts"].null_count() == 0
    assert set(ds.users.columns) == {"user_id", "country", "age"}


def test_items_have_exact_counts_unique_ids_and_topic_text(default):
    items = default[0]
    assert dict(items.group_by("item_type", maintain_order=True).len().iter_rows()) == (
        DEFAULT_ITEMS
    )
    assert items["item_id"].n_unique() == items.height
    assert (
        items["item_id"] == items["item_type"] + ":" + items["item_id"].str.split(":").list.get(1)
    ).all()
    assert items["title"].str.split(" ").list.len().is_between(2, 4).all()
    assert items["tags"].list.len().is_between(2, 4).all()
    names, vocab = topic_table(16)
    tags = items.select("topic", "tags").explode("tags")
    assert all(w in vocab[t] for t, w in tags.iter_rows())  # tags are clean topic words
    starts = {
        "music": ("A song", "Music with"),
        "podcast": ("A podcast", "Weekly"),
        "audiobook": ("An audiobook", "A novel"),
    }
    for t, prefixes in starts.items():
        desc = items.filter(pl.col("item_type") == t)["description"]
        assert desc.str.starts_with(prefixes[0]).any() and desc.str.starts_with(prefixes[1]).any()
        assert (desc.str.starts_with(prefixes[0]) | desc.str.starts_with(prefixes[1])).all()
    # titles mostly speak of the item's own topic (noise words exist but are a minority)
    words = items.select("topic", w=pl.col("title").str.to_lowercase().str.split(" ")).explode("w")
    on_topic = sum(w in vocab[t] for t, w in words.iter_rows()) / words.height
    assert 0.7 < on_topic < 0.95


def test_audiobooks_are_sparse(default, joined):
    users, inter = default[2], default[1]
    touching = joined.group_by("item_type").agg(pl.col("user_id").n_unique())
    share_users = {t: n / users.height for t, n in touching.iter_rows()}
    assert share_users["music"] > 0.9
    assert 0.45 < share_users["podcast"] < 0.7
    assert 0.03 < share_users["audiobook"] < 0.15
    rows = dict(joined.group_by("item_type").len().iter_rows())
    assert rows["audiobook"] / inter.height < 0.05
    assert rows["audiobook"] * 5 < rows["podcast"] < rows["music"]
    assert inter["user_id"].n_unique() == users.height  # every user interacts


def test_audiobook_topics_agree_with_podcast_topics(joined):
    streams = joined.filter(pl.col("signal") == "stream")
    podcast = streams.filter(pl.col("item_type") == "podcast").select("user_id", "topic").unique()
    book = (
        streams.filter(pl.col("item_type") == "audiobook")
        .group_by("user_id", "topic")
        .agg(pl.col("weight").sum())
        .sort("weight", "topic", descending=[True, False])
        .group_by("user_id", maintain_order=True)
        .first()
        .join(podcast.select("user_id").unique(), on="user_id")
    )
    assert book.height >= 50

    def agreement(frame: pl.DataFrame) -> float:
        hits = frame.join(podcast.with_columns(hit=True), on=["user_id", "topic"], how="left")
        return hits["hit"].is_not_null().mean()

    chance = agreement(book.with_columns(pl.col("topic").shuffle(seed=1)))
    assert agreement(book) > 0.6
    assert agreement(book) > 3 * chance


def test_signals_weights_and_timestamps(default, joined):
    inter = default[1]
    assert inter.columns == ["user_id", "item_id", "weight", "signal", "ts"]
    types = dict(joined.group_by("signal").agg(pl.col("item_type").unique().sort()).iter_rows())
    assert types == {
        "stream": ["audiobook", "music", "podcast"],
        "follow": ["podcast"],
        "preview": ["audiobook", "music"],
    }
    assert inter.select("user_id", "item_id", "signal").is_unique().all()
    stream = inter.filter(pl.col("signal") == "stream")["weight"]
    assert stream.min() >= 1 and stream.max() > 3  # play counts
    assert (inter.filter(pl.col("signal") != "stream")["weight"] == 1).all()
    assert inter["ts"].dtype == pl.Int64
    assert inter["ts"].min() >= T0 and inter["ts"].max() < T0 + WINDOW_S
    assert inter["ts"].max() - inter["ts"].min() > 0.95 * WINDOW_S


def test_users_frame(default):
    users = default[2]
    assert users["user_id"].n_unique() == users.height == 3000
    assert set(users["country"].unique()) <= set(COUNTRIES)
    assert users["age"].is_between(16, 80).all()


def test_queries_reference_items_of_the_phrase_topic(default):
    items, queries = default[0], default[3]
    vocab = topic_table(16)[1]
    topic_of = {w: t for t, words in enumerate(vocab) for w in words}
    assert queries["query"].n_unique() == 4 * 16
    assert queries.group_by("query").len()["len"].max() <= 50
    rel = queries.join(items, on="item_id")
    for query, topic, tags in rel.select("query", "topic", "tags").iter_rows():
        words = query.split()
        assert {topic_of[w] for w in words} == {topic}
        assert set(words) & set(tags)


def test_topics_beyond_the_table_stay_distinct():
    names, vocab = topic_table(len(TOPICS) + 3)
    assert len(set(names)) == len(names)
    assert len({w for v in vocab for w in v}) == sum(len(v) for v in vocab)
    items, inter, _, queries = generate_synthetic(users=50, topics=len(TOPICS) + 3)
    assert items["topic"].max() == len(TOPICS) + 2
    assert queries["query"].n_unique() == queries.unique("query").height


def test_other_item_types_and_tiny_catalogs(tmp_path):
    items, inter, _, _ = generate_synthetic(users=100, items={"music": 5, "radio": 3}, seed=1)
    assert items["item_type"].value_counts().sort("item_type").rows() == [
        ("music", 5),
        ("radio", 3),
    ]
    assert set(inter["item_id"]) <= set(items["item_id"])
    prepare_synthetic(tmp_path / "tiny", users=10, items={"audiobook": 1})
    assert read_dataset(tmp_path / "tiny").items.height == 1


@pytest.mark.parametrize(
    "bad",
    [
        dict(users=0),
        dict(topics=0),
        dict(items={"music": 0}),
        dict(items={}),
        dict(interactions_per_user=0.5),
    ],
)
def test_generate_rejects_bad_arguments(bad):
    with pytest.raises(ContractError):
        generate_synthetic(**bad)


def test_parse_item_counts():
    assert parse_item_counts("music=2000,podcast=1000,audiobook=300") == DEFAULT_ITEMS
    assert parse_item_counts(" music = 5 , talk=1 ") == {"music": 5, "talk": 1}


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "music",
        "music=",
        "=5",
        "music=abc",
        "music=0",
        "music=-3",
        "music=1.5",
        "music=1,music=2",
        "music=1,",
        "music=1;podcast=2",
    ],
)
def test_parse_item_counts_rejects_bad_specs(spec):
    with pytest.raises(ContractError) as err:
        parse_item_counts(spec)
    assert "\n" not in str(err.value) and "TYPE=N" in str(err.value)


def test_hidden_tastes_drive_choices_and_show_in_text_only_as_a_weak_hint():
    counts = {"music": 200, "podcast": 100, "audiobook": 40}
    plain = generate_synthetic(users=400, items=counts, seed=5)
    items, inter, _, _ = generate_synthetic(users=400, items=counts, seed=5, tastes=4)
    same = ["item_id", "item_type", "title", "tags", "topic"]
    assert items.select(same).equals(plain[0].select(same))  # titles and tags show no taste
    trng = np.random.default_rng([5, 7])  # the taste stream of the generator
    item_taste = trng.integers(0, 4, items.height)
    user_taste = trng.integers(0, 4, (400, 16))
    # a share of the descriptions ends with a style word, mostly the item's own taste's
    changed = (items["description"] != plain[0]["description"]).to_numpy()
    last = items["description"].str.extract(r"(\w+)\.$", 1).to_list()
    hinted = np.array([w in STYLES[:4] for w in last])
    assert not (changed & ~hinted).any() and 0.2 < hinted.mean() < 0.4
    own = np.array([STYLES.index(w) for w in np.array(last)[hinted]]) == item_taste[hinted]
    assert 0.75 < own.mean() < 0.98
    idx = {i: n for n, i in enumerate(items["item_id"])}
    rows = inter.filter(pl.col("signal") == "stream")
    u = np.array([int(x[1:]) for x in rows["user_id"]])
    i = np.array([idx[x] for x in rows["item_id"]])
    topic = items["topic"].to_numpy()[i]
    agree = (item_taste[i] == user_taste[u, topic]).mean()
    # 1/4 by chance; 0.85 expected (noise 0.2), less where a (type, topic, taste) is empty
    assert agree > 0.6
    ui = np.array([int(x[1:]) for x in plain[1].filter(pl.col("signal") == "stream")["user_id"]])
    ii = np.array([idx[x] for x in plain[1].filter(pl.col("signal") == "stream")["item_id"]])
    base = (item_taste[ii] == user_taste[ui, items["topic"].to_numpy()[ii]]).mean()
    assert abs(base - 0.25) < 0.05  # without tastes, choices ignore them
