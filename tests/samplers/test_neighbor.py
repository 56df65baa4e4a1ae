"""Heterogeneous k-hop neighbour sampling (samplers.neighbor): property-based invariants on
random graphs, exact hand-made cases and the real Douban graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sampling_checks import (
    assert_same_hetero,
    check_subgraph,
    fan_outs,
    hetero_graphs,
    random_hetero,
    seed_sets,
    subgraph_edges,
)
from torch_geometric.data import HeteroData

from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import load_graph
from audiograph.samplers.neighbor import NeighborSampler


def gen(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def draw_exclusions(data_, data: HeteroData) -> dict:
    """A random subset of each edge type's edges as exclusion keys ``src * n_dst + dst``."""
    exclude = {}
    for et in data.edge_types:
        ei = data[et].edge_index
        keys = ei[0] * data[et[2]].num_nodes + ei[1]
        pick = data_.draw(st.lists(st.booleans(), min_size=keys.numel(), max_size=keys.numel()))
        exclude[et] = keys[torch.tensor(pick, dtype=torch.bool)]
    return exclude


@st.composite
def cases(draw):
    data = draw(hetero_graphs())
    spec, fanout = draw(fan_outs(data))
    return data, draw(seed_sets(data)), spec, fanout, draw(st.integers(0, 10_000))


@settings(max_examples=30, deadline=None)
@given(case=cases(), weighted=st.booleans())
def test_invariants_on_random_graphs(device, case, weighted):
    data, seeds, spec, fanout, seed = case
    sampler = NeighborSampler(data, spec, weighted=weighted, device=device)
    out = sampler.sample({t: s.to(device) for t, s in seeds.items()}, gen(seed, device))
    check_subgraph(data, out, seeds, fanout, device=device)
    # the scratch state is reset: a second call on the same sampler is just as valid
    out2 = sampler.sample(seeds, gen(seed, device))
    assert_same_hetero(out, out2)


@settings(max_examples=40, deadline=None)
@given(case=cases(), data_=st.data())
def test_fused_hop_equals_the_torch_path(case, data_):
    """The numba hop (CPU default) draws the same numbers and makes the same choices as the
    torch ops: identical subgraphs, with and without excluded edges, over two calls."""
    data, seeds, spec, _, seed = case
    exclude = draw_exclusions(data_, data)
    fused, plain = NeighborSampler(data, spec), NeighborSampler(data, spec, fused=False)
    assert fused.fused and not plain.fused
    g1, g2 = gen(seed), gen(seed)
    for ex in (None, exclude):
        assert_same_hetero(fused.sample(seeds, g1, ex), plain.sample(seeds, g2, ex))
    with pytest.raises(ValueError, match="CPU with uniform"):
        NeighborSampler(data, spec, weighted=True, fused=True)


def test_fused_hop_in_a_worker_thread_without_a_thread_safe_layer(monkeypatch):
    """The prefetch thread's kernels run serially when numba's layer is not thread-safe;
    the output is the same."""
    import threading

    from audiograph.samplers import fused_hop

    monkeypatch.setattr(fused_hop, "PARALLEL_ANY_THREAD", False)

    def parallel_kernel(*args):
        raise AssertionError("the parallel kernel ran in a worker thread")

    monkeypatch.setattr(fused_hop, "_hop_parallel", parallel_kernel)
    data = random_hetero(3, [40, 30, 20], [0.2, 0.1, 0.3] * 3)
    seeds = {t: torch.arange(10) for t in data.node_types}
    got = {}
    worker = threading.Thread(
        target=lambda: got.update(out=NeighborSampler(data, [4, 3]).sample(seeds, gen(7)))
    )
    worker.start()
    worker.join()
    assert_same_hetero(got["out"], NeighborSampler(data, [4, 3], fused=False).sample(seeds, gen(7)))


@settings(max_examples=30, deadline=None)
@given(case=cases(), data_=st.data())
def test_exclude_removes_exactly_the_given_edges(device, case, data_):
    data, seeds, spec, fanout, seed = case
    exclude = {et: keys.to(device) for et, keys in draw_exclusions(data_, data).items()}
    sampler = NeighborSampler(data, spec, device=device)
    full = sampler.sample(seeds, gen(seed, device))
    part = sampler.sample(seeds, gen(seed, device), exclude=exclude)
    check_subgraph(data, part, seeds, fanout, exclude=exclude, exact=False, device=device)
    # hop 1 draws the same neighbours and then drops exactly the excluded edges
    for et in data.edge_types:
        n1 = full[et].num_sampled_edges[0]
        e = subgraph_edges(full, et)[:, :n1]
        keys = e[0] * data[et[2]].num_nodes + e[1]
        kept = e[:, ~torch.isin(keys, exclude[et].cpu())]
        m1 = part[et].num_sampled_edges[0]
        assert torch.equal(subgraph_edges(part, et)[:, :m1], kept)


def test_exclude_of_unsampled_type_and_empty_keys_change_nothing():
    data = random_hetero(3, [8, 6], [0.5] * 4)
    sampler = NeighborSampler(data, [3, 2])
    seeds = {"a": torch.tensor([5, 1, 2])}
    ref = sampler.sample(seeds, gen(0))
    ex = {("a", "co", "b"): torch.empty(0, dtype=torch.long)}
    assert_same_hetero(ref, sampler.sample(seeds, gen(0), exclude=ex))
    assert_same_hetero(ref, sampler.sample(seeds, gen(0), exclude={}))


def chain() -> HeteroData:
    """One type ``a``; edges (src -> dst), ids 0..5: 1->0, 2->0, 0->1, 3->1, 3->2, 4->3."""
    data = HeteroData()
    data["a"].num_nodes = 6
    data["a"].x = torch.arange(12, dtype=torch.float32).view(6, 2)
    data["a", "co", "a"].edge_index = torch.tensor([[1, 3, 0, 2, 3, 4], [0, 1, 1, 0, 2, 3]])
    return data


def test_hand_made_two_hops_exact(device):
    """Seeds [0, 1]: hop 1 reaches 2 and 3 (0 and 1 are seeds already), hop 2 expands only
    the new nodes 2 and 3 (not the seeds again) and reaches 4; node 5 is isolated."""
    out = NeighborSampler(chain(), [-1, -1], device=device).sample(
        {"a": torch.tensor([0, 1], device=device)}
    )
    et = ("a", "co", "a")
    assert out["a"].n_id.tolist() == [0, 1, 2, 3, 4]
    assert out["a"].num_sampled_nodes == [2, 2, 1]
    assert out["a"].batch_size == 2
    assert out["a"].x.tolist() == chain()["a"].x[:5].tolist()
    # neighbours of 0: 1 (edge 0), 2 (edge 3); of 1: 0 (edge 2), 3 (edge 1); of 2: 3; of 3: 4
    assert out[et].edge_index.tolist() == [[1, 2, 0, 3, 3, 4], [0, 0, 1, 1, 2, 3]]
    assert out[et].e_id.tolist() == [0, 3, 2, 1, 4, 5]
    assert out[et].num_sampled_edges == [4, 2]


def test_node_reached_twice_at_hop_one_is_expanded_once():
    """Seeds 0 and 1 both have in-neighbour 2 (and 2 has in-neighbours 3, 4): at hop 2 node
    2 is a destination exactly min(deg, k) times, once."""
    data = HeteroData()
    data["a"].num_nodes = 5
    data["a", "co", "a"].edge_index = torch.tensor([[2, 2, 3, 4], [0, 1, 2, 2]])
    for k, fan in ((1, 1), (2, 2), (-1, 2)):
        out = NeighborSampler(data, [k, k]).sample({"a": torch.tensor([0, 1])}, gen(0))
        n_id = out["a"].n_id.tolist()
        ei = out["a", "co", "a"].edge_index
        assert out["a", "co", "a"].num_sampled_edges == [2, fan]
        assert ei[:, :2].tolist() == [[2, 2], [0, 1]]
        assert ei[1, 2:].tolist() == [2] * fan
        assert n_id[:3] == [0, 1, 2] and len(n_id) == 3 + fan
        assert set(n_id[3:]) <= {3, 4}
        assert out["a"].num_sampled_nodes == [2, 1, fan]


def test_seeds_of_several_types_come_first_in_the_given_order():
    data = random_hetero(11, [10, 9, 7], [0.4] * 9)
    seeds = {"c": torch.tensor([6, 0, 3]), "a": torch.tensor([9, 2, 5, 4])}
    out = NeighborSampler(data, [2, 2]).sample(seeds, gen(1))
    assert out["c"].n_id[:3].tolist() == [6, 0, 3]
    assert out["a"].n_id[:4].tolist() == [9, 2, 5, 4]
    assert out["b"].batch_size == 0 and out["b"].num_sampled_nodes[0] == 0
    check_subgraph(data, out, seeds, {et: [2, 2] for et in data.edge_types})


def test_dict_fan_out_with_default_and_minus_one():
    data = random_hetero(7, [12, 10], [0.6, 0.5, 0.4, 0.0])
    spec = {"default": [2, 1], ("a", "co", "b"): [-1, 0]}
    seeds = {"a": torch.arange(0, 12, 3), "b": torch.tensor([4, 1])}
    out = NeighborSampler(data, spec).sample(seeds, gen(2))
    fanout = {et: spec.get(et, spec["default"]) for et in data.edge_types}
    check_subgraph(data, out, seeds, fanout)
    ab = ("a", "co", "b")
    deg = torch.bincount(data[ab].edge_index[1], minlength=10)
    assert out[ab].num_sampled_edges == [int(deg[seeds["b"]].sum()), 0]
    assert out["b", "co", "b"].num_sampled_edges == [0, 0]  # empty edge type


def test_fan_out_errors():
    data = random_hetero(0, [3, 3], [0.5] * 4)
    with pytest.raises(ValueError, match="default"):
        NeighborSampler(data, {("a", "co", "a"): [1]})
    with pytest.raises(ValueError, match="same number of hops"):
        NeighborSampler(data, {"default": [1, 1], ("a", "co", "b"): [1]})


def test_deterministic_per_generator_seed():
    data = random_hetero(5, [40, 30, 20], [0.3] * 9)
    seeds = {"a": torch.arange(0, 40, 4), "c": torch.tensor([3, 17])}
    for weighted in (False, True):
        sampler = NeighborSampler(data, [3, 2], weighted=weighted)
        a = sampler.sample(seeds, gen(42))
        assert_same_hetero(a, sampler.sample(seeds, gen(42)))
        assert_same_hetero(
            a, NeighborSampler(data, [3, 2], weighted=weighted).sample(seeds, gen(42))
        )
        b = sampler.sample(seeds, gen(43))
        assert any(
            not torch.equal(subgraph_edges(a, et), subgraph_edges(b, et)) for et in data.edge_types
        )


def test_weighted_sampling_prefers_heavy_edges():
    """Seed 0 has 10 in-neighbours, neighbour 9 weighs 100x the others: with k = 1 it is
    drawn with probability 100 / 109."""
    data = HeteroData()
    data["a"].num_nodes = 10
    data["a", "co", "a"].edge_index = torch.stack([torch.arange(10), torch.zeros(10).long()])
    data["a", "co", "a"].edge_weight = torch.tensor([1.0] * 9 + [100.0])
    hits = {True: 0, False: 0}
    for weighted in (True, False):
        sampler = NeighborSampler(data, [1], weighted=weighted)
        g = gen(9)
        for _ in range(300):
            out = sampler.sample({"a": torch.tensor([0])}, g)
            hits[weighted] += int(out["a"].n_id[-1] == 9)
    assert hits[True] > 250  # expected 275, sd 4.7
    assert hits[False] < 60  # expected 30, sd 5.2


# --- real data -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def douban(tmp_path_factory, data_root) -> HeteroData:
    tmp = tmp_path_factory.mktemp("douban_sampler")
    prepare_douban(data_root / "douban-music-book", tmp / "data")
    build_graph(
        tmp / "data", tmp / "graph", GraphConfig(encoder="none", min_users=2, top_k=20), quiet=True
    )
    return load_graph(tmp / "graph")


@pytest.mark.parametrize(
    ("spec", "weighted"), [([10, 5], False), ([15, -1], False), ({"default": [8, 4]}, True)]
)
def test_douban_invariants(douban, device, spec, weighted):
    rng = np.random.default_rng(0)
    seeds = {
        t: torch.from_numpy(rng.choice(douban[t].num_nodes, 256, replace=False))
        for t in ("music", "book")
    }
    sampler = NeighborSampler(douban, spec, weighted=weighted, device=device)
    out = sampler.sample({t: s.to(device) for t, s in seeds.items()}, gen(0, device))
    fanout = {et: spec["default"] if isinstance(spec, dict) else spec for et in douban.edge_types}
    check_subgraph(douban, out, seeds, fanout, device=device)
    assert all(out[et].edge_index.shape[1] > 0 for et in douban.edge_types)
    assert all(out[t].num_sampled_nodes[1] > 0 for t in ("music", "book"))
