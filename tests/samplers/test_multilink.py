"""Multi-link balancing (audiograph.samplers.multilink): canonical link types, per-epoch counts and
reproducible uniform undersampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from audiograph.samplers.multilink import (
    balanced_counts,
    balanced_epoch,
    epoch_generator,
    link_edges,
)

AA, AB, BB, BC = ("a", "co", "a"), ("a", "co", "b"), ("b", "co", "b"), ("b", "co", "c")


def undirected_graph(seed: int, sizes: dict[str, int], p: dict[tuple[str, str], float]):
    """Co-interaction-style ``HeteroData``: every ordered type pair as ``(s, "co", d)``,
    each undirected link stored once in each direction (no self-loops), random order.
    Returns the graph and ``{(s, d): set of undirected links (s-node, d-node)}``."""
    rng = np.random.default_rng(seed)
    types = list(sizes)
    data = HeteroData()
    for t, n in sizes.items():
        data[t].num_nodes = n
    links = {}
    for i, s in enumerate(types):
        for d in types[i:]:
            m = rng.random((sizes[s], sizes[d])) < p.get((s, d), 0.0)
            if s == d:
                m = np.triu(m, 1)
            a, b = np.nonzero(m)
            links[s, d] = set(zip(a.tolist(), b.tolist(), strict=True))
            if s == d:
                a, b = np.concatenate([a, b]), np.concatenate([b, a])
            o = rng.permutation(a.size)
            data[s, "co", d].edge_index = torch.from_numpy(np.stack([a[o], b[o]]))
            if s != d:
                o = rng.permutation(a.size)
                data[d, "co", s].edge_index = torch.from_numpy(np.stack([b[o], a[o]]))
    return data, links


SIZES = {"a": 30, "b": 25, "c": 12}
P = {("a", "a"): 0.3, ("a", "b"): 0.2, ("b", "b"): 0.1, ("b", "c"): 0.15, ("c", "c"): 0.0}


def test_link_edges_counts_each_undirected_link_once():
    data, links = undirected_graph(0, SIZES, P)
    got = link_edges(data)
    # one canonical edge type per unordered type pair; the source comes first in node_types
    assert set(got) == {(s, "co", d) for s, d in links}
    for (s, _, d), e in got.items():
        pairs = list(zip(*e.tolist(), strict=True))
        assert len(pairs) == len(set(pairs)) == len(links[s, d])
        assert set(pairs) == links[s, d]
    total = sum(e.shape[1] for e in got.values())
    assert total == sum(len(v) for v in links.values())
    assert 2 * total == sum(data[et].edge_index.shape[1] for et in data.edge_types)
    assert got["c", "co", "c"].shape == (2, 0)


def test_link_edges_follows_node_type_order():
    data = HeteroData()
    data["y"].num_nodes, data["x"].num_nodes = 2, 3
    data["x", "co", "y"].edge_index = torch.tensor([[2, 0], [1, 0]])
    data["y", "co", "x"].edge_index = torch.tensor([[0, 1], [0, 2]])
    data["y", "co", "y"].edge_index = torch.tensor([[0, 1], [1, 0]])
    got = link_edges(data)
    assert set(got) == {("y", "co", "x"), ("y", "co", "y")}  # "y" is the first node type
    assert got["y", "co", "y"].tolist() == [[0], [1]]


def test_balanced_counts():
    sizes = {AA: 100, AB: 40, BB: 7, BC: 0}
    assert balanced_counts(sizes) == {AA: 7, AB: 7, BB: 7, BC: 0}
    assert balanced_counts(sizes, "min") == {AA: 7, AB: 7, BB: 7, BC: 0}
    assert balanced_counts(sizes, 50) == {AA: 50, AB: 40, BB: 7, BC: 0}
    assert balanced_counts(sizes, 1) == {AA: 1, AB: 1, BB: 1, BC: 0}
    assert balanced_counts(sizes, 2.5) == {AA: 18, AB: 18, BB: 7, BC: 0}  # ceil(17.5)
    assert balanced_counts(sizes, 1.0) == {AA: 7, AB: 7, BB: 7, BC: 0}
    # only the listed types are balanced, against the smallest of them
    assert balanced_counts(sizes, balance=[AA, AB]) == {AA: 40, AB: 40, BB: 7, BC: 0}
    assert balanced_counts(sizes, 0.5, balance=[AA, AB]) == {AA: 20, AB: 20, BB: 7, BC: 0}
    assert balanced_counts(sizes, balance=[AA, BC]) == {AA: 100, AB: 40, BB: 7, BC: 0}
    assert balanced_counts({AA: 0, AB: 0}) == {AA: 0, AB: 0}
    for bad in ("max", True, None, [3]):
        with pytest.raises(ValueError, match="target"):
            balanced_counts(sizes, bad)


@pytest.fixture(scope="module")
def graph():
    return undirected_graph(1, SIZES, P)


def edge_set(e: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(*e.cpu().tolist(), strict=True))


@pytest.mark.parametrize(
    ("target", "balance"), [("min", None), (60, None), (1.5, None), ("min", [AA, AB])]
)
def test_balanced_epoch_counts_and_subsets(graph, device, target, balance):
    data, _ = graph
    edges = {et: e.to(device) for et, e in link_edges(data).items()}
    sizes = {et: e.shape[1] for et, e in edges.items()}
    want = balanced_counts(sizes, target, balance)
    chosen = [et for et in (balance or sizes) if sizes[et] > 0]
    smallest = min(sizes[et] for et in chosen)
    cap = {"min": smallest, 60: 60, 1.5: math.ceil(1.5 * smallest)}[target]
    for et in sizes:
        assert want[et] == (min(sizes[et], cap) if et in chosen else sizes[et])
    for epoch in range(3):
        got = balanced_epoch(edges, epoch, seed=4, target=target, balance=balance)
        assert set(got) == set(edges)
        for et, e in got.items():
            assert e.device.type == torch.device(device).type
            assert e.shape == (2, want[et])
            picked = edge_set(e)
            assert len(picked) == want[et]  # distinct
            assert picked <= edge_set(edges[et])


def test_balanced_epoch_reproducible_per_seed_and_epoch(graph, device):
    data, _ = graph
    edges = {et: e.to(device) for et, e in link_edges(data).items()}
    sampled = [
        et
        for et, n in balanced_counts({et: e.shape[1] for et, e in edges.items()}).items()
        if n < edges[et].shape[1]
    ]
    assert len(sampled) >= 2

    def draw(epoch, seed):
        return balanced_epoch(edges, epoch, seed=seed)

    ref = draw(3, 11)
    again = draw(3, 11)
    assert all(torch.equal(ref[et], again[et]) for et in edges)
    for other in (draw(4, 11), draw(3, 12)):
        for et in sampled:
            assert edge_set(other[et]) != edge_set(ref[et])


def test_balanced_epoch_is_uniform_over_epochs(graph):
    """Over many epochs every edge of an undersampled type is drawn with probability
    count / size (Binomial z-test)."""
    data, _ = graph
    edges = link_edges(data)
    counts = balanced_counts({et: e.shape[1] for et, e in edges.items()})
    epochs = 400
    picked = {et: [] for et in edges}
    for epoch in range(epochs):
        for et, e in balanced_epoch(edges, epoch).items():
            picked[et].append(e[0] * 1000 + e[1])
    tested = 0
    for et, e in edges.items():
        n, k = e.shape[1], counts[et]
        if k in (0, n):
            continue
        keys = torch.sort(e[0] * 1000 + e[1]).values
        freq = torch.bincount(torch.searchsorted(keys, torch.cat(picked[et])), minlength=n)
        assert freq.sum() == epochs * k
        p = k / n
        z = (freq.double() - epochs * p) / math.sqrt(epochs * p * (1 - p))
        assert z.abs().max() < 4.5
        tested += 1
    assert tested >= 2


def test_epoch_generator_depends_only_on_its_arguments():
    def draws(*args):
        return torch.rand(5, generator=epoch_generator(*args)).tolist()

    assert draws(1, 2, 3) == draws(1, 2, 3)
    assert len({tuple(draws(*a)) for a in [(1, 2, 3), (2, 2, 3), (1, 3, 3), (1, 2, 4)]}) == 4
