"""graph-knn and the EASE / ALS / item-kNN peers (audiograph.twotower.graph_knn, .peers)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from torch_geometric.data import HeteroData

from audiograph.graphs.store import save_graph_tensors
from audiograph.twotower import evaluate as evaluate_module
from audiograph.twotower.config import EvaluationConfig
from audiograph.twotower.graph_knn import graph_edges, graph_knn, graph_knn_scores
from audiograph.twotower.peers import HAS_IMPLICIT, ease_scores, tune_peer, user_item_matrix

ITEMS = pl.DataFrame({"item_id": ["a", "b", "c", "d"], "item_type": ["x", "x", "y", "y"]})
# a-b 3 shared users, a-c 2, b-d 1, c-d 4 (types x: a, b; y: c, d)
EDGES = {
    ("x", "x"): [(0, 1, 3.0)],
    ("x", "y"): [(0, 0, 2.0), (1, 1, 1.0)],
    ("y", "y"): [(0, 1, 4.0)],
}


def _graph(folder):
    data = HeteroData()
    for t in ("x", "y"):
        data[t].x = torch.zeros(2, 0)
        data[t].has_text = torch.zeros(2, dtype=torch.bool)
        data[t].num_nodes = 2
    for (s, d), rows in EDGES.items():
        src = [r[0] for r in rows] + ([r[1] for r in rows] if s == d else [])
        dst = [r[1] for r in rows] + ([r[0] for r in rows] if s == d else [])
        w = [r[2] for r in rows] * (2 if s == d else 1)
        data[s, "co", d].edge_index = torch.tensor([src, dst])
        data[s, "co", d].edge_weight = torch.tensor(w)
        if s != d:
            data[d, "co", s].edge_index = torch.tensor([dst, src])
            data[d, "co", s].edge_weight = torch.tensor(w)
    nodes = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "item_type": ["x", "x", "y", "y"],
            "node_index": [0, 1, 0, 1],
        }
    )
    folder.mkdir()
    save_graph_tensors(folder, data, nodes)
    types = {
        f"{s}__co__{d}": int(data[s, "co", d].edge_index.shape[1]) for s, _, d in data.edge_types
    }
    manifest = {"kind": "graph", "format_version": 1, "node_types": {"x": 2, "y": 2}}
    (folder / "manifest.json").write_text(json.dumps({**manifest, "edge_types": types}))
    return folder


def test_graph_knn_score_is_the_hand_computed_sum(tmp_path):
    edges = graph_edges(_graph(tmp_path / "g"), ITEMS)
    assert edges.height == 2 * 4  # every undirected edge in both directions
    deg = {"a": 5.0, "b": 4.0, "c": 6.0, "d": 5.0}  # weighted degrees
    history = pl.DataFrame({"user_id": ["u", "u", "u", "v"], "item_id": ["a", "b", "a", "d"]})
    users = pl.Series(["u", "v", "nobody"])
    cand = np.array([2, 3])  # c, d
    raw = graph_knn_scores(edges, history, users, ITEMS, cand, normalized=False)
    # u has a, b (a twice counts once): c = w(a,c) + w(b,c) = 2 + 0, d = 0 + w(b,d) = 1
    # v has d: c = w(d,c) = 4, d = 0 (no self edge)
    assert raw.tolist() == [[2.0, 1.0], [4.0, 0.0], [0.0, 0.0]]
    norm = graph_knn_scores(edges, history, users, ITEMS, cand, normalized=True)
    want = [
        [2 / np.sqrt(deg["a"] * deg["c"]), 1 / np.sqrt(deg["b"] * deg["d"])],
        [4 / np.sqrt(deg["d"] * deg["c"]), 0.0],
        [0.0, 0.0],
    ]
    assert np.allclose(norm, want)
    u, i = graph_knn(edges, history, users, ITEMS, "y", normalized=False)
    assert np.allclose(u @ i.T, [[0, 0, 2, 1], [0, 0, 4, 0], [0, 0, 0, 0]])


def test_ease_matches_the_closed_form_in_both_gram_forms():
    rng = np.random.default_rng(0)
    for n_users, n_items in ((6, 9), (12, 5)):  # the dual (users < items) and primal forms
        inter = pl.DataFrame(
            {
                "user_id": rng.integers(0, n_users, 30).astype(str),
                "item_id": rng.integers(0, n_items, 30).astype(str),
            }
        )
        items = pl.DataFrame({"item_id": [str(i) for i in range(n_items)], "item_type": "t"})
        users = pl.Series([str(u) for u in range(n_users)])
        x = user_item_matrix(inter, users, items)
        xd = x.toarray().astype(np.float64)
        assert set(np.unique(xd)) <= {0.0, 1.0}
        cand = np.array([0, 2, n_items - 1])
        for lam, got in zip((1.0, 10.0), ease_scores(x, cand, (1.0, 10.0)), strict=True):
            p = np.linalg.inv(xd.T @ xd + lam * np.eye(n_items))
            b = np.eye(n_items) - p / np.diag(p)[None, :]
            assert np.allclose(got, (xd @ b)[:, cand], atol=1e-5)


def _windows(tmp_path):
    """A split's fit/labels/test folders with the same users, the test part unlike both."""
    from audiograph.graphs.adapters.synthetic import prepare_synthetic
    from audiograph.graphs.split import split_dataset

    prepare_synthetic(
        tmp_path / "d", users=150, items={"music": 40, "podcast": 20, "audiobook": 10}
    )
    split_dataset(tmp_path / "d", tmp_path / "s", seed=0)
    return tmp_path / "s"


@pytest.mark.parametrize("name", ["ease", "als", "itemknn"])
def test_peer_tuning_reads_only_the_fit_and_label_windows(tmp_path, monkeypatch, name):
    if name != "ease" and not HAS_IMPLICIT:
        pytest.skip("implicit is not installed (the bench extra)")
    split = _windows(tmp_path)
    read = []
    real = evaluate_module.read_dataset
    monkeypatch.setattr(
        evaluate_module, "read_dataset", lambda p, **kw: read.append(p) or real(p, **kw)
    )
    cfg = EvaluationConfig()
    setting, entry = evaluate_module._peer_setting(name, cfg, split / "train", "audiobook", 0)
    assert sorted(p.name for p in read) == ["fit", "labels"]
    assert entry["tuned"] and entry["chosen"] == setting and len(entry["validation"]) > 1
    # tuned again from the two windows alone: the same choice and figures
    from audiograph.graphs.contract import read_dataset

    fit, labels = read_dataset(split / "fit"), read_dataset(split / "labels")
    again = tune_peer(name, fit.interactions, labels.interactions, fit.items, "audiobook")
    assert again["chosen"] == setting and again["validation"] == entry["validation"]


def test_graph_knn_variant_is_chosen_on_the_validation_users_only(tmp_path, monkeypatch):
    split = _windows(tmp_path)
    from audiograph.graphs.build import build_graph
    from audiograph.graphs.contract import read_dataset

    build_graph(split / "graph", tmp_path / "g", encoder="none", quiet=True)
    items = read_dataset(split / "train").items
    edges = graph_edges(tmp_path / "g", items)
    read = []
    real = evaluate_module.read_dataset
    monkeypatch.setattr(
        evaluate_module, "read_dataset", lambda p, **kw: read.append(p) or real(p, **kw)
    )
    normalized, entry = evaluate_module._graph_knn_variant(
        EvaluationConfig(), edges, split / "train", items, "audiobook"
    )
    assert sorted(p.name for p in read) == ["fit", "labels"]
    assert entry["chosen"] == ("normalized" if normalized else "raw")
    assert set(entry["validation"]) == {"raw", "normalized"}
    fixed = EvaluationConfig(graph_knn="normalized")
    assert evaluate_module._graph_knn_variant(fixed, edges, split / "train", items, "audiobook")[0]
