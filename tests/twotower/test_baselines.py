"""Baselines for the offline protocol (audiograph.twotower.baselines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from torch_geometric.nn import LightGCN

from audiograph.core.embeddings import align_embeddings
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.split import split_dataset
from audiograph.twotower.baselines import (
    LightGCNConfig,
    _embedding,
    _normalized_adjacency,
    fit_lightgcn,
    history_knn,
    lightgcn,
    popularity,
)
from audiograph.twotower.metrics import evaluate_vectors

ITEMS = pl.DataFrame({"item_id": ["a", "b", "c", "d"], "item_type": ["x", "x", "y", "y"]})
TRAIN = pl.DataFrame(
    {
        "user_id": ["u", "u", "v", "v", "w"],
        "item_id": ["a", "a", "a", "c", "b"],
        "weight": [1.0, 2.0, 3.0, 1.0, 1.0],
        "signal": ["stream", "tag", "stream", "stream", "stream"],
    }
)
USERS = pl.Series(["u", "v", "w", "nobody"])
VECS = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]], np.float32)


def test_popularity_counts_distinct_users():
    u, i = popularity(TRAIN, USERS, ITEMS, log=False)
    assert u.shape == (4, 1) and (u == 1).all()
    assert i[:, 0].tolist() == [2, 1, 1, 0]  # u's two signals on a count once
    assert np.allclose(popularity(TRAIN, USERS, ITEMS)[1][:, 0], np.log1p([2, 1, 1, 0]))


def test_history_knn_is_a_weighted_mean_of_normalized_vectors():
    u, i = history_knn(TRAIN, USERS, ITEMS, VECS)
    unit = np.array([[1, 0], [0, 1], [2**-0.5, 2**-0.5], [0, 0]])
    assert np.allclose(i, unit, atol=1e-6)
    v = 3 * unit[0] + 1 * unit[2]  # weights 3 (a) and 1 (c), all signals together
    assert np.allclose(u[1], v / np.linalg.norm(v), atol=1e-6)
    assert np.allclose(u[0], unit[0]) and np.allclose(u[2], unit[1])
    assert (u[3] == 0).all()  # no training interactions
    unweighted = history_knn(TRAIN, USERS, ITEMS, VECS, weighted=False)[0]
    v = unit[0] + unit[2]
    assert np.allclose(unweighted[1], v / np.linalg.norm(v), atol=1e-6)


def test_hgnn_embeddings_align_to_the_items_with_zero_rows_for_missing_ones():
    emb_ids = pl.DataFrame(
        {"item_id": ["c", "a", "b"], "item_type": ["y", "x", "x"], "row": [0, 1, 2]}
    )
    vecs, missing = align_embeddings(ITEMS, emb_ids, VECS[[2, 0, 1]])
    assert missing == 1 and (vecs[3] == 0).all() and np.allclose(vecs[:3], VECS[:3])
    u, i = history_knn(TRAIN, USERS, ITEMS, vecs)
    ref_u, ref_i = history_knn(TRAIN, USERS, ITEMS, VECS)
    assert np.allclose(i, ref_i) and np.allclose(u, ref_u)


def test_symmetric_propagation_matches_pyg_lightgcn():
    torch.manual_seed(0)
    pu = torch.tensor([0, 0, 1, 2, 2, 2])
    pi = torch.tensor([3, 4, 4, 3, 5, 6])
    edge_index = torch.stack([torch.cat([pu, pi]), torch.cat([pi, pu])])
    reference = LightGCN(7, 4, 2)  # normalizes with gcn_norm on every call
    ours = LightGCN(7, 4, 2, normalize=False)
    ours.load_state_dict(reference.state_dict())
    adj = _normalized_adjacency(pu, pi, 7)
    expected = reference.get_embedding(edge_index)
    got = _embedding(ours, adj)
    assert torch.allclose(got, expected, atol=1e-6)
    # and so do the gradients (backward reuses the symmetric matrix)
    expected.pow(2).sum().backward()
    got.pow(2).sum().backward()
    assert torch.allclose(ours.embedding.weight.grad, reference.embedding.weight.grad, atol=1e-5)


@pytest.fixture(scope="module")
def synth_split(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    root: Path = tmp_path_factory.mktemp("synth")
    items = {"music": 300, "podcast": 150, "audiobook": 50}
    prepare_synthetic(root / "ds", users=500, items=items, seed=0)
    split_dataset(root / "ds", root / "split", seed=0, method="random")
    train, test = (read_dataset(root / "split" / s) for s in ("train", "test"))
    return train.items, train.interactions, test.interactions


def test_lightgcn_learns_and_is_seeded(synth_split):
    items, train, test = synth_split
    users = pl.concat([train["user_id"], pl.Series(["new-user"])]).unique().sort()
    kw = dict(dim=16, layers=2, epochs=12, lr=0.02, batch=1024)
    fit = fit_lightgcn(train, users, items, LightGCNConfig(seed=0, **kw))
    assert fit.user_vecs.shape == (len(users), 16) and fit.item_vecs.shape == (items.height, 16)
    assert fit.user_vecs.dtype == np.float32 == fit.item_vecs.dtype
    assert len(fit.losses) == 12 and fit.losses[-1] < 0.8 * fit.losses[0]
    new = users.to_list().index("new-user")
    assert (fit.user_vecs[new] == 0).all()
    unseen = ~items["item_id"].is_in(train["item_id"].implode()).to_numpy()
    assert (fit.item_vecs[unseen] == 0).all()
    again = lightgcn(train, users, items, LightGCNConfig(seed=0, **kw))
    assert np.allclose(again[0], fit.user_vecs, atol=1e-5)
    other = lightgcn(train, users, items, LightGCNConfig(seed=1, **kw))
    assert not np.allclose(other[0], fit.user_vecs, atol=1e-3)
    # planted topics: the learned vectors rank far better than popularity
    lgcn = evaluate_vectors(fit.user_vecs, fit.item_vecs, users, items, train, test, "music")
    pop = evaluate_vectors(*popularity(train, users, items), users, items, train, test, "music")
    assert lgcn["ndcg@10"] > 2 * pop["ndcg@10"], (lgcn["ndcg@10"], pop["ndcg@10"])
