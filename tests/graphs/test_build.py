"""Co-interaction graph: exact counts on real data, a brute-force reference, invariants."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter, defaultdict

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.coint import co_interaction_edges, user_items
from audiograph.graphs.contract import write_dataset
from audiograph.graphs.store import load_graph, load_node_ids

NO_TEXT = {"encoder": "none"}


def reference_pairs(users, items, cap=None, weights=None):
    """Brute force: {(a, b): n_users} with a < b, optional per-user cap by weight."""
    hist = defaultdict(dict)
    for k, (u, i) in enumerate(zip(users, items, strict=True)):
        hist[u][i] = hist[u].get(i, 0.0) + (1.0 if weights is None else weights[k])
    out = Counter()
    for h in hist.values():
        kept = sorted(h, key=lambda i: (-h[i], i))[:cap] if cap else list(h)
        for a, b in itertools.combinations(sorted(kept), 2):
            out[(a, b)] += 1
    return dict(out)


def reference_top_k(pairs, node_type, k):
    """Union over endpoints of each (node, neighbour type)'s k best neighbours, ranked by
    n_users then the documented hash tie-break."""
    nbrs = defaultdict(list)
    for (a, b), n in pairs.items():
        for s, d in ((a, b), (b, a)):
            tie = ((s ^ d) * 2654435761) % 2**32
            nbrs[(s, node_type[d])].append(((n, tie), (a, b)))
    return {e for lst in nbrs.values() for _, e in sorted(lst, reverse=True)[:k]}


def edges_of(rows, node_type, min_users=1, cap=None, top_k=None, rows_per_chunk=7):
    users, items, w = map(list, zip(*rows, strict=True))
    df = pl.DataFrame(
        {
            "user": users,
            "item": pl.Series(items, dtype=pl.UInt32),
            "weight": pl.Series(w, dtype=pl.Float64),
            "ts": pl.Series([0] * len(users), dtype=pl.Int64),
        }
    )
    ui = user_items(df.lazy(), user_cap=cap)
    got = co_interaction_edges(ui, node_type, min_users, top_k, rows_per_chunk=rows_per_chunk)
    assert got["a"].to_list() == sorted(got["a"].to_list())
    return {(a, b): n for a, b, n in got.iter_rows()}, reference_pairs(users, items, cap, w)


ROWS = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 25), st.integers(1, 5)), min_size=1, max_size=150
)


@settings(max_examples=40, deadline=None)
@given(ROWS, st.sampled_from([None, 1, 2, 4]), st.integers(1, 3), st.sampled_from([3, 50, 10**9]))
def test_pairs_match_brute_force(rows, cap, min_users, rows_per_chunk):
    got, ref = edges_of(rows, np.zeros(26, int), min_users, cap, None, rows_per_chunk)
    assert got == {e: n for e, n in ref.items() if n >= min_users}


@settings(max_examples=40, deadline=None)
@given(ROWS, st.integers(1, 4), st.integers(1, 3), st.sampled_from([3, 10**9]))
def test_top_k_keeps_union_of_each_endpoints_best(rows, k, n_types, rows_per_chunk):
    node_type = np.arange(26) % n_types
    got, ref = edges_of(rows, node_type, top_k=k, rows_per_chunk=rows_per_chunk)
    expected = reference_top_k(ref, node_type, k)
    assert set(got) == expected
    assert all(got[e] == ref[e] for e in got)


def tiny_data(path, **extra_columns):
    """3 items, 2 users; both streamed a and b, u1 tagged c."""
    path.mkdir(parents=True)
    items = pl.DataFrame(
        {"item_id": ["a", "b", "c"], "item_type": ["music", "music", "book"], "title": "t"}
    )
    inter = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2"],
            "item_id": ["a", "b", "c", "a", "b"],
            "signal": ["stream", "stream", "tag", "stream", "stream"],
        }
    )
    write_dataset(path, items, inter.with_columns(**extra_columns))
    return path


TINY_EDGES = {"music__co__music": 2, "music__co__book": 2, "book__co__music": 2}


def test_signals_filter_and_unknown_signal(tmp_path):
    data = tiny_data(tmp_path / "data")
    m = build_graph(data, tmp_path / "g", GraphConfig(signals=["stream"], **NO_TEXT), quiet=True)
    assert {k: v for k, v in m["edge_types"].items() if v} == {"music__co__music": 2}
    m = build_graph(data, tmp_path / "g", GraphConfig(signals=["tag"], **NO_TEXT), quiet=True)
    assert m["num_edges"] == 0  # a signal that occurs but links nothing is no error
    for signals, expected in [
        (
            ["stream", "foo"],
            "--signals: signal 'foo' does not occur in interactions.parquet (present: stream, tag)",
        ),
        ([], "--signals: no signal given (omit it to count every signal)"),
    ]:
        with pytest.raises(ContractError) as exc:
            build_graph(data, tmp_path / "bad", GraphConfig(signals=signals, **NO_TEXT), quiet=True)
        assert str(exc.value) == expected
    assert not (tmp_path / "bad").exists()


def test_cli_unknown_signal_exits_2_with_one_line(tmp_path):
    data = tiny_data(tmp_path / "data")
    cmd = [sys.executable, "-c", "from audiograph.pipeline.cli import main; main()", "build-graph"]
    args = [str(data), "--out", str(tmp_path / "g"), "--encoder", "none", "--signals", "foo"]
    res = subprocess.run(cmd + args, capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr == (
        "error: --signals: signal 'foo' does not occur in interactions.parquet "
        "(present: stream, tag)\n"
    )


def test_extra_interaction_columns_named_like_internal_ones(tmp_path):
    # "item" and "user" are names build_graph uses internally; a user's columns of the same
    # names are ignored features and must not change the graph
    data = tiny_data(tmp_path / "data", item=pl.lit(0), user=pl.lit(7), _row=pl.lit(1))
    m = build_graph(data, tmp_path / "g", GraphConfig(**NO_TEXT), quiet=True)
    assert {k: v for k, v in m["edge_types"].items() if v} == TINY_EDGES


@pytest.fixture(scope="module")
def lastfm_data(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("lastfm") / "data"
    prepare_lastfm(data_root / "lastfm-hetrec-2k", out)
    return out


@pytest.fixture(scope="module")
def douban_data(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("douban") / "data"
    prepare_douban(data_root / "douban-music-book", out)
    return out


def test_lastfm_graph_counts(lastfm_data, tmp_path):
    m = build_graph(lastfm_data, tmp_path / "g", GraphConfig(**NO_TEXT), quiet=True)
    assert m["node_types"] == {"artist": 17_632}  # every artist is a node
    assert m["edge_types"] == {"artist__co__artist": 1_531_890}
    # without the user cap, 1,624,304 was cross-checked against reference_top_k (brute force)
    m = build_graph(lastfm_data, tmp_path / "g1", GraphConfig(user_cap=None, **NO_TEXT), quiet=True)
    assert m["edge_types"] == {"artist__co__artist": 1_624_304}
    m = build_graph(
        lastfm_data,
        tmp_path / "g2",
        GraphConfig(min_users=2, user_cap=50, top_k=20, signals=["stream"], **NO_TEXT),
        quiet=True,
    )
    assert m["edge_types"] == {"artist__co__artist": 168_156}


def test_douban_graph_counts_and_reference(douban_data, tmp_path):
    m = build_graph(douban_data, tmp_path / "g", GraphConfig(**NO_TEXT), quiet=True)
    assert m["node_types"] == {"music": 5_567, "book": 6_777}
    assert m["edge_types"] == {
        "music__co__music": 432_140,
        "music__co__book": 411_199,
        "book__co__music": 411_199,
        "book__co__book": 553_230,
    }
    full = build_graph(
        douban_data,
        tmp_path / "full",
        GraphConfig(user_cap=None, top_k=None, **NO_TEXT),
        quiet=True,
    )
    assert full["edge_types"] == {
        "music__co__music": 11_839_222,
        "music__co__book": 5_059_666,
        "book__co__music": 5_059_666,
        "book__co__book": 9_995_420,
    }
    # independent reference: book x music co-occurrence counts = A_book^T A_music (dense)
    inter = pl.read_parquet(douban_data / "interactions.parquet").unique(["user_id", "item_id"])
    nodes = load_node_ids(tmp_path / "full")
    local = dict(zip(nodes["item_id"].to_list(), nodes["node_index"].to_list(), strict=True))
    users = {u: k for k, u in enumerate(inter["user_id"].unique(maintain_order=True))}
    mats = {t: torch.zeros(len(users), full["node_types"][t]) for t in ("music", "book")}
    for u, i in inter.select("user_id", "item_id").iter_rows():
        mats[i.split(":")[0]][users[u], local[i]] = 1.0
    co = mats["book"].t() @ mats["music"]
    data = load_graph(tmp_path / "full")
    got = torch.zeros_like(co)
    et = data["book", "co", "music"]
    got[et.edge_index[0], et.edge_index[1]] = et.edge_weight
    assert torch.equal(got, co)


def test_graph_invariants_and_hetero_data(douban_data, tmp_path):
    build_graph(
        douban_data, tmp_path / "g", GraphConfig(min_users=3, top_k=10, **NO_TEXT), quiet=True
    )
    data = load_graph(tmp_path / "g")
    assert set(data.node_types) == {"music", "book"}
    assert len(data.edge_types) == 4
    for s, _, d in data.edge_types:
        fwd, rev = data[s, "co", d], data[d, "co", s]
        pairs = set(map(tuple, fwd.edge_index.t().tolist()))
        assert pairs == set(map(tuple, rev.edge_index.flip(0).t().tolist()))  # exact reverse
        assert (fwd.edge_weight >= 3).all()  # min_users respected
        assert fwd.edge_index[0].max() < data[s].num_nodes
        assert fwd.edge_index[1].max() < data[d].num_nodes
        if s == d:
            assert (fwd.edge_index[0] != fwd.edge_index[1]).all()  # no self loops
    assert data["music"].x.shape == (5_567, 0) and not data["music"].has_text.any()


def test_build_is_deterministic(douban_data, tmp_path):
    for name in ("a", "b"):
        build_graph(douban_data, tmp_path / name, GraphConfig(top_k=5, **NO_TEXT), quiet=True)
    a = (tmp_path / "a" / "graph.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "graph.safetensors").read_bytes()


def test_edge_shards_hold_the_same_edges(douban_data, tmp_path):
    """``edge_shard_rows``: the edges as shards of at most that many directed edges, readable
    with safetensors alone, loading to exactly the one-file graph."""
    from safetensors.numpy import load_file

    cfg = GraphConfig(top_k=5, **NO_TEXT)
    whole = build_graph(douban_data, tmp_path / "a", cfg, quiet=True)
    cfg = GraphConfig(top_k=5, edge_shard_rows=20_000, **NO_TEXT)
    m = build_graph(douban_data, tmp_path / "b", cfg, quiet=True)
    assert m["edge_types"] == whole["edge_types"] and m["num_edges"] == 224_220
    assert m["edge_shards"] == [f"edges-{k:05d}.safetensors" for k in range(12)]  # ceil(224220/20k)
    assert "edge_index.music__co__book" not in load_file(str(tmp_path / "b" / "graph.safetensors"))
    sizes = [load_file(str(tmp_path / "b" / f)) for f in m["edge_shards"]]
    counts = [sum(v.shape[-1] for k, v in t.items() if k.startswith("edge_weight")) for t in sizes]
    assert counts == [20_000] * 11 + [4_220]
    a, b = load_graph(tmp_path / "a"), load_graph(tmp_path / "b")
    for et in a.edge_types:
        assert torch.equal(a[et].edge_index, b[et].edge_index), et
        assert torch.equal(a[et].edge_weight, b[et].edge_weight), et


def test_cli_prepare_build_info(douban_data, tmp_path):
    out = tmp_path / "g"
    cmd = [sys.executable, "-c", "from audiograph.pipeline.cli import main; main()"]
    res = subprocess.run(
        cmd
        + [
            "build-graph",
            str(douban_data),
            "--out",
            str(out),
            "--encoder",
            "none",
            "--quiet",
            "--min-users",
            "2",
        ],
        capture_output=True,
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(
        subprocess.run(
            cmd + ["info", str(out), "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert set(info["node_types"]) == {"music", "book"} and info["feature_dim"] == 0
    assert set(info["edge_types"]) == {
        "music__co__music",
        "music__co__book",
        "book__co__music",
        "book__co__book",
    }
    assert info["config"]["min_users"] == 2
