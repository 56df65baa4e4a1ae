"""Text featurization: bundled encoder, mean pooling, disk cache, featureless items."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from audiograph.core.text_encoder import TextEncoder, featurize_texts, item_texts
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import load_graph, load_node_ids


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_item_text_template():
    items = pl.DataFrame(
        {
            "title": ["Blue Train", "", ""],
            "description": ["A jazz album", "Only words", ""],
            "tags": [["jazz", "sax"], [], [f"t{i}" for i in range(15)]],
        }
    )
    assert item_texts(items) == [
        "Blue Train. A jazz album Tags: jazz, sax.",
        "Only words",
        "Tags: " + ", ".join(f"t{i}" for i in range(10)) + ".",
    ]


def test_mean_pooling_matches_manual_computation(encoder):
    texts = ["melancholic indie rock", "a podcast about ancient rome"]
    got = encoder.encode(texts, progress=False)
    assert got.shape == (2, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    with torch.inference_mode():
        tok = encoder.tokenizer(texts[1], return_tensors="pt")
        h = encoder.model(**tok).last_hidden_state[0].mean(0)
    np.testing.assert_allclose(got[1], torch.nn.functional.normalize(h, dim=0), atol=1e-5)
    # similar texts are closer than unrelated ones
    more = encoder.encode(["sad indie rock songs", "stock market news"], progress=False)
    assert got[0] @ more[0] > got[0] @ more[1]


def test_token_sorted_batches_keep_input_order_and_vectors(encoder):
    # lengths out of order, more texts than a batch: batches are formed by token count
    texts = ["rock " * n for n in (40, 1, 200, 7, 3, 90, 0, 15)]
    assert encoder.token_counts(texts).tolist() == [42, 3, 128, 9, 5, 92, 2, 17]
    got = encoder.encode(texts, batch_size=3, progress=False)
    alone = np.stack([encoder.encode([t], progress=False)[0] for t in texts])
    np.testing.assert_allclose(got, alone, atol=1e-5)


def test_cache_encodes_only_new_or_changed_texts(encoder, tmp_path):
    texts = ["jazz saxophone", "true crime detective", "", "jazz saxophone"]
    x, has_text, stats = featurize_texts(texts, encoder, tmp_path, progress=False)
    assert stats == {"encoded": 2, "cached": 0, "empty": 1}
    assert has_text.tolist() == [True, True, False, True]
    assert not x[2].any() and np.array_equal(x[0], x[3])
    texts2 = ["jazz saxophone", "true crime detectives", "history of rome"]
    x2, _, stats2 = featurize_texts(texts2, encoder, tmp_path, progress=False)
    assert stats2 == {"encoded": 2, "cached": 1, "empty": 0}
    assert np.array_equal(x2[0], x[0])
    assert np.allclose(x2[2], encoder.encode(["history of rome"], progress=False)[0], atol=1e-6)


def test_graph_features_follow_node_order(encoder, tmp_path):
    prepare_synthetic(
        tmp_path / "data", users=200, items={"music": 40, "podcast": 20, "audiobook": 5}, seed=3
    )
    m = build_graph(
        tmp_path / "data",
        tmp_path / "g",
        GraphConfig(cache_dir=str(tmp_path / "cache")),
        quiet=True,
    )
    assert m["feature_dim"] == 384 and m["stats"]["text_cache"]["cached"] == 0
    data, nodes = load_graph(tmp_path / "g"), load_node_ids(tmp_path / "g")
    items = pl.read_parquet(tmp_path / "data" / "items.parquet")
    row = nodes.filter(pl.col("item_type") == "podcast").row(7, named=True)
    text = item_texts(items.filter(pl.col("item_id") == row["item_id"]))
    np.testing.assert_allclose(
        data["podcast"].x[7].numpy(), encoder.encode(text, progress=False)[0], atol=1e-5
    )
    again = build_graph(
        tmp_path / "data",
        tmp_path / "g",
        GraphConfig(cache_dir=str(tmp_path / "cache")),
        quiet=True,
    )
    assert again["stats"]["text_cache"]["encoded"] == 0  # rebuild reads the cache
