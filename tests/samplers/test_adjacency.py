"""CSC adjacency and exact neighbour sampling without replacement (samplers.adjacency)."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sampling_checks import CHI2_999, chi_square

from audiograph.samplers.adjacency import Adjacency, sample_neighbors

# Hand-made graph: 4 sources, 3 destinations, edges in scrambled order, weight = id + 1.
#   edge id:   0  1  2  3  4  5
EDGES = [[3, 1, 0, 2, 1, 0], [0, 2, 0, 2, 0, 2]]


def hand_made(device="cpu") -> Adjacency:
    ei = torch.tensor(EDGES, device=device)
    w = torch.arange(1, 7, dtype=torch.float32, device=device)
    return Adjacency.from_edge_index(ei, num_src=4, num_dst=3, weight=w)


def gen(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def test_from_edge_index_hand_made():
    adj = hand_made()
    # destination 0: sources 0 (edge 2), 1 (edge 4), 3 (edge 0); 1: none; 2: 0 (5), 1 (1), 2 (3)
    assert adj.colptr.tolist() == [0, 3, 3, 6]
    assert adj.row.tolist() == [0, 1, 3, 0, 1, 2]
    assert adj.perm.tolist() == [2, 4, 0, 5, 1, 3]
    assert adj.weight.tolist() == [3.0, 5.0, 1.0, 6.0, 2.0, 4.0]
    assert adj.num_src == 4 and adj.num_edges == 6


def test_hand_made_sampling_takes_all_when_degree_fits():
    adj = hand_made()
    nodes = torch.tensor([2, 1, 0, 2])
    for k in (3, 4, -1):
        slot, which = sample_neighbors(adj, nodes, k, generator=gen(0))
        assert slot.tolist() == [3, 4, 5, 0, 1, 2, 3, 4, 5]
        assert which.tolist() == [0, 0, 0, 2, 2, 2, 3, 3, 3]
    slot, which = sample_neighbors(adj, nodes, 2, generator=gen(0))
    assert which.tolist() == [0, 0, 2, 2, 3, 3]
    assert all(3 <= s <= 5 for s in slot[[0, 1, 4, 5]].tolist())
    assert all(0 <= s <= 2 for s in slot[[2, 3]].tolist())
    for pair in (slot[0:2], slot[2:4], slot[4:6]):
        assert pair[0] != pair[1]


@st.composite
def graphs(draw):
    num_src, num_dst = draw(st.integers(0, 15)), draw(st.integers(1, 15))
    p = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    src, dst = np.nonzero(rng.random((num_src, num_dst)) < p)
    order = rng.permutation(src.size)
    ei = torch.from_numpy(np.stack([src[order], dst[order]])).long()
    w = torch.from_numpy(rng.uniform(0.1, 10.0, src.size)).float()
    nodes = draw(st.lists(st.integers(0, num_dst - 1), max_size=25))  # duplicates allowed
    return ei, num_src, num_dst, w, torch.tensor(nodes, dtype=torch.long)


@settings(max_examples=30, deadline=None)
@given(graphs())
def test_perm_maps_csc_slots_back_to_edge_index(g):
    ei, num_src, num_dst, w, _ = g
    adj = Adjacency.from_edge_index(ei, num_src, num_dst, w)
    deg = torch.bincount(ei[1], minlength=num_dst)
    assert adj.colptr.tolist() == [0, *torch.cumsum(deg, 0).tolist()]
    dst_of_slot = torch.repeat_interleave(torch.arange(num_dst), deg)
    assert torch.equal(ei[:, adj.perm], torch.stack([adj.row, dst_of_slot]))
    assert torch.equal(w[adj.perm], adj.weight)
    assert sorted(adj.perm.tolist()) == list(range(ei.shape[1]))
    for v in range(num_dst):  # sources sorted within each destination
        r = adj.row[adj.colptr[v] : adj.colptr[v + 1]]
        assert torch.equal(r, torch.sort(r).values)


def check_sample(ei, adj, nodes, k, slot, which):
    """Every documented property of one ``sample_neighbors`` result."""
    assert slot.dtype == torch.long and which.dtype == torch.long
    assert slot.shape == which.shape
    slot, which, nodes = slot.cpu(), which.cpu(), nodes.cpu()
    colptr, row = adj.colptr.cpu(), adj.row.cpu()
    start = colptr[nodes]
    deg = colptr[nodes + 1] - start
    # every slot lies in its node's CSC range and is a real in-neighbour edge
    assert ((slot >= start[which]) & (slot < start[which] + deg[which])).all()
    got = set(zip(row[slot].tolist(), nodes[which].tolist(), strict=True))
    assert got <= set(zip(*ei.cpu().tolist(), strict=True))
    assert torch.equal(ei.cpu()[:, adj.perm.cpu()[slot]], torch.stack([row[slot], nodes[which]]))
    # no neighbour twice for the same node position (without replacement)
    key = which * max(adj.num_edges, 1) + slot
    assert torch.unique(key).numel() == key.numel()
    # fan-out: exactly min(deg, k) per position (all when k < 0)
    want = deg if k < 0 else deg.clamp(max=k)
    assert torch.equal(torch.bincount(which, minlength=nodes.numel()), want)
    full = deg <= k if k >= 0 else torch.ones_like(deg, dtype=torch.bool)
    for i in torch.nonzero(full).flatten().tolist():  # deg <= k: all neighbours
        assert sorted(slot[which == i].tolist()) == list(range(start[i], start[i] + deg[i]))
    # nodes taking all their neighbours come first
    f = full[which].int()
    assert (f[:-1] >= f[1:]).all()


@settings(max_examples=30, deadline=None)
@given(
    g=graphs(),
    k=st.sampled_from([-1, 0, 1, 2, 3, 7]),
    weighted=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_sample_invariants_on_random_graphs(device, g, k, weighted, seed):
    ei, num_src, num_dst, w, nodes = g
    ei, w, nodes = ei.to(device), w.to(device), nodes.to(device)
    adj = Adjacency.from_edge_index(ei, num_src, num_dst, w)
    slot, which = sample_neighbors(adj, nodes, k, weighted, gen(seed, device))
    assert slot.device.type == which.device.type == torch.device(device).type
    check_sample(ei, adj, nodes, k, slot, which)


def test_isolated_nodes_and_empty_edge_type(device):
    empty = Adjacency.from_edge_index(
        torch.empty(2, 0, dtype=torch.long, device=device), 0, 4, torch.empty(0, device=device)
    )
    assert empty.colptr.tolist() == [0] * 5 and empty.num_edges == 0
    nodes = torch.tensor([3, 0, 0, 2], device=device)
    for k in (-1, 0, 2):
        for weighted in (False, True):
            slot, which = sample_neighbors(empty, nodes, k, weighted, gen(0, device))
            assert slot.numel() == which.numel() == 0
    slot, which = sample_neighbors(empty, nodes[:0], 2, generator=gen(0, device))
    assert slot.numel() == 0
    # destination 1 of the hand-made graph is isolated
    adj = hand_made(device)
    slot, which = sample_neighbors(adj, torch.tensor([1, 1], device=device), 2, True)
    assert slot.numel() == 0
    slot, which = sample_neighbors(adj, torch.tensor([1, 0], device=device), 2, True)
    assert which.tolist() == [1, 1] and len(set(slot.tolist())) == 2


def test_weighted_without_weights_raises():
    adj = Adjacency.from_edge_index(torch.tensor(EDGES), 4, 3)
    with pytest.raises(ValueError, match="weights"):
        sample_neighbors(adj, torch.tensor([0]), 2, weighted=True)
    slot, _ = sample_neighbors(adj, torch.tensor([0]), 3, weighted=True)  # deg <= k: all
    assert slot.tolist() == [0, 1, 2]


def star(n: int, weight=None, device="cpu") -> Adjacency:
    """Destination 0 with in-neighbours 0..n-1."""
    ei = torch.stack([torch.arange(n), torch.zeros(n, dtype=torch.long)]).to(device)
    w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=device)
    return Adjacency.from_edge_index(ei, n, 1, w)


@pytest.mark.parametrize(("n", "k"), [(5, 2), (7, 3), (6, 5), (8, 4), (4, 1)])
def test_floyd_gives_every_subset_exactly_equally_often(monkeypatch, n, k):
    """Enumerate every sequence of Floyd's discrete draws t_j ~ U{0..j}: each k-subset must
    come out exactly k! times (exact uniformity, not a statistical test)."""
    seqs = list(itertools.product(*[range(j + 1) for j in range(n - k, n)]))
    u = torch.tensor(
        [[(t + 0.5) / (j + 1) for t, j in zip(seq, range(n - k, n), strict=True)] for seq in seqs],
        dtype=torch.float64,
    )
    real_rand = torch.rand

    def fake_rand(*size, **kw):
        if tuple(size) == (len(seqs), k) and kw.get("dtype") == torch.float64:
            return u.clone()
        return real_rand(*size, **kw)

    monkeypatch.setattr(torch, "rand", fake_rand)
    adj = star(n)
    slot, which = sample_neighbors(adj, torch.zeros(len(seqs), dtype=torch.long), k)
    assert torch.equal(which, torch.arange(len(seqs)).repeat_interleave(k))
    subsets = Counter(tuple(sorted(r)) for r in adj.row[slot].view(-1, k).tolist())
    assert len(subsets) == math.comb(n, k)
    assert set(subsets.values()) == {math.factorial(k)}


def test_uniform_sampling_chi_square(device):
    """k = 3 of a hub with 20 neighbours: per-neighbour inclusion counts and the counts of
    all C(20, 3) = 1140 subsets fit the uniform distribution (p = 0.001)."""
    n, k, trials = 20, 3, 57_000  # 50 expected draws per subset
    adj = star(n, device=device)
    slot, _ = sample_neighbors(
        adj, torch.zeros(trials, dtype=torch.long, device=device), k, generator=gen(0, device)
    )
    nb = adj.row[slot].cpu()
    incl = torch.bincount(nb, minlength=n)
    assert incl.sum() == trials * k
    # inclusion indicators are negatively correlated, so df = n - 1 is conservative
    assert chi_square(incl, np.full(n, trials * k / n)) < CHI2_999[19]
    mask = (2 ** nb.view(trials, k)).sum(1)
    _, counts = torch.unique(mask, return_counts=True)
    subsets = math.comb(n, k)
    e = trials / subsets
    observed = np.concatenate([counts.numpy(), np.zeros(subsets - counts.numel())])
    assert chi_square(observed, np.full(subsets, e)) < CHI2_999[subsets - 1]


def test_uniform_inclusion_probability_is_k_over_deg():
    rng = np.random.default_rng(1)
    degs = rng.integers(4, 31, size=10)
    src = np.concatenate([rng.choice(60, d, replace=False) for d in degs])
    dst = np.repeat(np.arange(10), degs)
    adj = Adjacency.from_edge_index(torch.from_numpy(np.stack([src, dst])), 60, 10)
    k, trials = 3, 4000
    slot, which = sample_neighbors(adj, torch.arange(10).repeat(trials), k, generator=gen(1))
    counts = torch.bincount(slot, minlength=adj.num_edges).double()
    deg_of_slot = torch.from_numpy(np.repeat(degs, degs)).double()
    p = k / deg_of_slot
    # on average over a node's neighbours exactly k / deg (k of deg every time) ...
    total = torch.zeros(10, dtype=torch.float64).index_add_(0, torch.from_numpy(dst), counts)
    assert total.tolist() == [trials * k] * 10
    # ... and each neighbour's frequency is Binomial(trials, k / deg)
    z = (counts - trials * p) / torch.sqrt(trials * p * (1 - p))
    assert z.abs().max() < 4.5


WEIGHTS = [1.0, 2.0, 3.0, 4.0, 10.0]


def test_weighted_k1_frequencies_proportional_to_weights(device):
    trials = 40_000
    adj = star(5, WEIGHTS, device)
    slot, _ = sample_neighbors(
        adj, torch.zeros(trials, dtype=torch.long, device=device), 1, True, gen(3, device)
    )
    counts = torch.bincount(adj.row[slot].cpu(), minlength=5)
    expected = trials * np.array(WEIGHTS) / sum(WEIGHTS)
    assert chi_square(counts, expected) < CHI2_999[4]


def successive_pair_probabilities(w):
    """Exact P({i, j}) of drawing 2 without replacement, each draw proportional to weight."""
    total = sum(w)
    return {
        (i, j): w[i] / total * w[j] / (total - w[i]) + w[j] / total * w[i] / (total - w[j])
        for i, j in itertools.combinations(range(len(w)), 2)
    }


def test_weighted_k2_matches_successive_sampling(device):
    trials = 40_000
    probs = successive_pair_probabilities(WEIGHTS)
    assert math.isclose(sum(probs.values()), 1.0)
    adj = star(5, WEIGHTS, device)
    slot, _ = sample_neighbors(
        adj, torch.zeros(trials, dtype=torch.long, device=device), 2, True, gen(4, device)
    )
    pairs = Counter(tuple(sorted(r)) for r in adj.row[slot].cpu().view(trials, 2).tolist())
    assert set(pairs) <= set(probs)
    observed = [pairs.get(p, 0) for p in probs]
    assert chi_square(observed, [trials * q for q in probs.values()]) < CHI2_999[9]


def test_weighted_sampling_across_degree_buckets():
    """Nodes of degrees 3, 5, 6, 12, 40 (several padded power-of-two buckets) sampled in one
    call: k = 1 frequencies follow each node's own weights."""
    rng = np.random.default_rng(5)
    degs = [3, 5, 6, 12, 40]
    src = np.concatenate([np.arange(d) for d in degs])
    dst = np.repeat(np.arange(len(degs)), degs)
    w = rng.uniform(0.5, 5.0, src.size)
    adj = Adjacency.from_edge_index(
        torch.from_numpy(np.stack([src, dst])), 40, len(degs), torch.from_numpy(w)
    )
    trials = 20_000
    slot, which = sample_neighbors(adj, torch.arange(len(degs)).repeat(trials), 1, True, gen(5))
    counts = torch.bincount(slot, minlength=adj.num_edges).numpy()
    ws = adj.weight.double().numpy()
    for v, d in enumerate(degs):
        lo, hi = adj.colptr[v], adj.colptr[v + 1]
        assert counts[lo:hi].sum() == trials
        expected = trials * ws[lo:hi] / ws[lo:hi].sum()
        assert chi_square(counts[lo:hi], expected) < CHI2_999[d - 1]


def test_weighted_k2_every_node_gets_distinct_neighbours_of_its_own():
    rng = np.random.default_rng(6)
    degs = [3, 5, 6, 12, 40]
    src = np.concatenate([np.arange(d) for d in degs])
    dst = np.repeat(np.arange(len(degs)), degs)
    ei = torch.from_numpy(np.stack([src, dst]))
    w = torch.from_numpy(rng.uniform(0.5, 5.0, src.size)).float()
    adj = Adjacency.from_edge_index(ei, 40, len(degs), w)
    nodes = torch.arange(len(degs)).repeat(200)
    for k in (2, 4, 11):
        slot, which = sample_neighbors(adj, nodes, k, True, gen(k))
        check_sample(ei, adj, nodes, k, slot, which)


def test_chi_square_table_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df, crit in CHI2_999.items():
        assert crit == pytest.approx(stats.chi2.ppf(0.999, df), abs=1e-3)
