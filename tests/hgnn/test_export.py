"""Embedding export: layer-wise inference = full forward, inductive items, determinism, k-NN."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import save_file

from audiograph.core.atomic import write_json
from audiograph.core.errors import ContractError
from audiograph.core.text_encoder import default_encoder_path
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.store import load_graph
from audiograph.hgnn import HeteroSAGE
from audiograph.hgnn.export import (
    _degrees,
    export_embeddings,
    full_graph_embeddings,
    isolated_embeddings,
    load_model,
)
from audiograph.hgnn.neighbors import nearest_neighbors

HIDDEN = 16


def make_model(data, conv="maxpool", seed=0, feature_dim=384):
    torch.manual_seed(seed)
    return HeteroSAGE(
        data.node_types,
        data.edge_types,
        {t: data[t].num_nodes for t in data.node_types},
        feature_dim,
        HIDDEN,
        2,
        conv,
    ).eval()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Synthetic dataset + graph, a run dir with an untrained model, an extended catalog."""
    root = tmp_path_factory.mktemp("export")
    cache = root / "cache"
    items = {"music": 120, "podcast": 60, "audiobook": 20}
    prepare_synthetic(root / "data", users=400, items=items, seed=2)
    build_graph(root / "data", root / "g", GraphConfig(cache_dir=str(cache)), quiet=True)
    data = load_graph(root / "g")
    model = make_model(data)
    run = root / "run"
    run.mkdir()
    save_file(model.state_dict(), str(run / "model.safetensors"))
    write_json(
        run / "config.json",
        {
            "kind": "hgnn-run",
            "graph_dir": str(root / "g"),
            "model": {
                "node_types": data.node_types,
                "edge_types": [list(et) for et in data.edge_types],
                "num_nodes": {t: data[t].num_nodes for t in data.node_types},
                "feature_dim": 384,
                "hidden": HIDDEN,
                "num_layers": 2,
                "conv": "maxpool",
            },
            "encoder": {"path": str(default_encoder_path()), "max_length": 128},
        },
    )
    base = read_dataset(root / "data").items
    new = pl.DataFrame(
        {
            "item_id": [f"new-pod-{i}" for i in range(5)] + ["new-empty"],
            "item_type": ["podcast"] * 6,
            "title": [f"Brand new show {i} about jazz and history" for i in range(5)] + [""],
            "description": ["A fresh podcast."] * 5 + [""],
            "tags": [["jazz", "history"]] * 5 + [[]],
        }
    )
    catalog = root / "catalog"
    catalog.mkdir()
    write_dataset(catalog, pl.concat([base.select(new.columns), new]))
    return {
        "root": root,
        "data": data,
        "model": model,
        "run": run,
        "cache": cache,
        "catalog": catalog,
        "n_items": base.height,
    }


@pytest.mark.parametrize("conv", ["maxpool", "sage-mean", "gatv2"])
def test_layerwise_equals_full_forward(env, conv):
    data = load_graph(env["root"] / "g")
    data["podcast"].has_text[::3] = False  # mix text and learned inputs
    model = make_model(data, conv, seed=1)
    with torch.no_grad():
        h0 = {
            t: model.encode_input(t, torch.arange(data[t].num_nodes), data[t].x, data[t].has_text)
            for t in data.node_types
        }
        ref = model(h0, {et: data[et].edge_index for et in data.edge_types})
    got = full_graph_embeddings(model, data, chunk_size=50)
    # build-graph stores both directions: the reverse type's edges give the CSC unsorted
    sym = full_graph_embeddings(model, data, chunk_size=50, symmetric=True)
    for t in data.node_types:
        assert got[t].shape == (data[t].num_nodes, HIDDEN)
        assert torch.allclose(got[t], ref[t], atol=1e-5), (conv, t)
        assert torch.equal(sym[t], got[t]), (conv, t)


def test_small_chunks_match_large(env):
    a = full_graph_embeddings(env["model"], env["data"], chunk_size=7)
    b = full_graph_embeddings(env["model"], env["data"], chunk_size=65536)
    for t in a:
        assert torch.allclose(a[t], b[t], atol=1e-6)


def test_isolated_equals_forward_without_edges(env):
    data, model = env["data"], env["model"]
    x = data["podcast"].x[:9]
    with torch.no_grad():
        h0 = {t: model.text[t](x) for t in data.node_types}
        ref = model(h0, {et: torch.zeros(2, 0, dtype=torch.long) for et in data.edge_types})
    assert torch.allclose(isolated_embeddings(model, "podcast", x, chunk_size=4), ref["podcast"])


def test_load_model_roundtrip(env):
    model, config = load_model(env["run"])
    assert config["kind"] == "hgnn-run" and not model.training
    ref = env["model"].state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


def test_export_graph_only_covers_every_item_and_is_deterministic(env, tmp_path):
    kw = {"cache_dir": env["cache"]}
    m1 = export_embeddings(env["run"], tmp_path / "e1", **kw)
    export_embeddings(env["run"], tmp_path / "e2", chunk_size=13, **kw)
    assert m1["count"] == env["n_items"] and m1["inductive"] == 0 and m1["dim"] == HIDDEN
    assert m1["per_type"] == {"music": 120, "podcast": 60, "audiobook": 20}
    a, b = (np.load(tmp_path / d / "embeddings.npy") for d in ("e1", "e2"))
    assert a.dtype == np.float32 and a.shape == (env["n_items"], HIDDEN)
    assert np.allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    export_embeddings(env["run"], tmp_path / "e3", **kw)  # same settings, same bytes
    assert (tmp_path / "e1/embeddings.npy").read_bytes() == (
        tmp_path / "e3/embeddings.npy"
    ).read_bytes()
    p1, p3 = (pl.read_parquet(tmp_path / d / "embeddings.parquet") for d in ("e1", "e3"))
    assert p1.equals(p3)
    assert np.array_equal(np.stack(p1["vector"].to_numpy()), a)
    ids = pl.read_parquet(tmp_path / "e1/ids.parquet")
    nodes = pl.read_parquet(env["root"] / "g/nodes.parquet")
    assert ids["item_id"].to_list() == nodes["item_id"].to_list()
    assert ids["row"].to_list() == list(range(ids.height))
    # row order: node_index within type -> full-graph embedding of that node
    emb = full_graph_embeddings(env["model"], env["data"])
    r = ids.filter(pl.col("item_type") == "podcast")["row"][4]
    assert np.allclose(a[r], emb["podcast"][4].numpy(), atol=1e-6)


def test_export_with_catalog_embeds_new_items_inductively(env, tmp_path):
    m = export_embeddings(env["run"], tmp_path / "e", env["catalog"], cache_dir=env["cache"])
    assert m["inductive"] == 5 and m["skipped_no_text"] == 1
    assert m["count"] == env["n_items"] + 5 and m["per_type"]["podcast"] == 65
    df = pl.read_parquet(tmp_path / "e/embeddings.parquet")
    new = df.filter(~pl.col("in_graph"))
    assert new["item_id"].to_list() == [f"new-pod-{i}" for i in range(5)]
    assert df["item_id"].to_list()[-5:] == new["item_id"].to_list()  # appended in catalog order
    v = np.stack(new["vector"].to_numpy())
    assert np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert "new-empty" not in df["item_id"].to_list()
    # the default text head, fitted on the nodes with text and neighbours; the nodes with
    # text and no neighbour (new items inside the graph) get its prediction too
    head = m["inductive_method"]["text_head"]
    deg, data = _degrees(env["data"]), env["data"]
    text = {t: data[t].has_text.bool() for t in data.node_types}
    assert head["fitted"] == sum(int((text[t] & (deg[t] > 0)).sum()) for t in text)
    lone = sum(int((text[t] & (deg[t] == 0)).sum()) for t in text)
    assert head["isolated_nodes"] == lone > 0
    # inductive="model": the HGNN run on each new item with no neighbours instead
    m2 = export_embeddings(
        env["run"], tmp_path / "e2", env["catalog"], cache_dir=env["cache"], inductive="model"
    )
    assert m2["inductive_method"] == "model"
    df2 = pl.read_parquet(tmp_path / "e2/embeddings.parquet")
    nodes = pl.read_parquet(env["root"] / "g/nodes.parquet")
    warm = torch.cat([deg[t] > 0 for t in sorted(deg)])  # nodes.parquet: by type, then index
    order = nodes.with_row_index("r").sort("item_type", "node_index")["r"].to_numpy()
    same = np.zeros(nodes.height, bool)
    same[order] = warm.numpy()
    a, b = (np.stack(d.head(nodes.height)["vector"].to_numpy()) for d in (df, df2))
    np.testing.assert_array_equal(a[same], b[same])
    assert not np.allclose(a[~same], b[~same])
    v2 = np.stack(df2.filter(~pl.col("in_graph"))["vector"].to_numpy())
    assert not np.allclose(v, v2)


def test_catalog_with_unknown_type_is_a_contract_error(env, tmp_path):
    cat = tmp_path / "cat"
    cat.mkdir()
    items = pl.DataFrame({"item_id": ["v1"], "item_type": ["video"], "title": ["A video"]})
    write_dataset(cat, items)
    with pytest.raises(ContractError, match="item_type.*video"):
        export_embeddings(env["run"], tmp_path / "e", cat, cache_dir=env["cache"])
    assert not (tmp_path / "e").exists()


def test_nearest_neighbors(env, tmp_path):
    export_embeddings(env["run"], tmp_path / "e", env["catalog"], cache_dir=env["cache"])
    ids = pl.read_parquet(tmp_path / "e/ids.parquet")
    query = ids["item_id"][3]
    nn = nearest_neighbors(tmp_path / "e", query, k=8)
    assert nn.columns == ["item_id", "item_type", "score", "title"]
    assert nn.height == 8 and query not in nn["item_id"].to_list()
    assert nn["score"].to_list() == sorted(nn["score"].to_list(), reverse=True)
    assert nn["title"].null_count() == 0
    a = np.load(tmp_path / "e/embeddings.npy")
    brute = a @ a[3]
    brute[3] = -np.inf
    assert np.isclose(nn["score"][0], brute.max(), atol=1e-6)
    new = nearest_neighbors(tmp_path / "e", "new-pod-0", k=3, catalog=env["catalog"])
    assert new.height == 3 and "new-pod-0" not in new["item_id"].to_list()
    with pytest.raises(ContractError, match="item_id 'nope' not in embeddings"):
        nearest_neighbors(tmp_path / "e", "nope")


def test_not_a_run_or_embeddings_dir(tmp_path):
    with pytest.raises(ContractError, match="not an HGNN run directory"):
        load_model(tmp_path)
    with pytest.raises(ContractError, match="not an embeddings directory"):
        nearest_neighbors(tmp_path, "x")


def test_export_on_another_graph_over_the_same_nodes(env, tmp_path):
    """The run's weights on a graph with other edges (e.g. all of a split's train part at
    serving time): same nodes, other neighbourhoods; a graph with other nodes is refused."""
    kw = {"cache_dir": env["cache"]}
    sparse = tmp_path / "g-top1"
    build_graph(
        env["root"] / "data", sparse, GraphConfig(cache_dir=env["cache"], top_k=1), quiet=True
    )
    base = export_embeddings(env["run"], tmp_path / "e", **kw)
    other = export_embeddings(env["run"], tmp_path / "e-top1", graph=sparse, **kw)
    assert other["graph_dir"] == str(sparse.absolute()) != base["graph_dir"]
    a, b = (np.load(tmp_path / d / "embeddings.npy") for d in ("e", "e-top1"))
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-4)
    small = tmp_path / "small"
    prepare_synthetic(small, users=50, items={"music": 10, "podcast": 5, "audiobook": 2}, seed=2)
    build_graph(small, tmp_path / "g-small", GraphConfig(encoder="none"), quiet=True)
    with pytest.raises(ContractError, match="does not match the run's model"):
        export_embeddings(env["run"], tmp_path / "e-small", graph=tmp_path / "g-small", **kw)


def test_model_spec_round_trips_and_reads_runs_saved_before_num_layers_and_conv():
    from audiograph.hgnn.model import ModelSpec

    spec = ModelSpec(["a"], [("a", "co", "a")], {"a": 3}, 8, 16, 3, "gatv2")
    saved = spec.saved()
    assert saved["edge_types"] == [["a", "co", "a"]] and saved["conv"] == "gatv2"
    assert ModelSpec.from_saved(json.loads(json.dumps(saved))) == spec
    old = {k: v for k, v in saved.items() if k not in ("num_layers", "conv")}
    assert ModelSpec.from_saved(old) == ModelSpec(
        ["a"], [("a", "co", "a")], {"a": 3}, 8, 16, 2, "maxpool"
    )
