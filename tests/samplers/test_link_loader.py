"""Link-prediction loader (samplers.link_loader) on the synthetic demo-size graph: no label
leakage, label/negative mapping, epoch coverage, resume and prefetch determinism."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
import torch
from sampling_checks import CHI2_999, assert_same_hetero, check_subgraph, chi_square
from sampling_checks import subgraph_edges as message_edges

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import load_graph
from audiograph.samplers.link_loader import LinkNeighborLoader
from audiograph.samplers.multilink import balanced_counts, fill_counts, link_edges

ITEMS = {"music": 300, "podcast": 150, "audiobook": 40}
FAN = [5, 3]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synthetic_loader")
    prepare_synthetic(tmp / "data", users=500, items=ITEMS, seed=0)
    build_graph(tmp / "data", tmp / "graph", GraphConfig(encoder="none"), quiet=True)
    return load_graph(tmp / "graph")


def keys_of(e: torch.Tensor, n_dst: int) -> torch.Tensor:
    return (e[0] * n_dst + e[1]).cpu()


def supervision(out, et) -> tuple[torch.Tensor, torch.Tensor]:
    """Global ``[2, B]`` positives and ``[B, K]`` negatives of link type ``et``."""
    s, _, d = et
    eli = out[et].edge_label_index
    pos = torch.stack([out[s].n_id[eli[0]], out[d].n_id[eli[1]]]).cpu()
    return pos, out[d].n_id[out[et].neg_dst].cpu()


def check_batch(data, loader, out, device):
    """Labels are real edges of their type, negatives are destination-type seeds, the seeds
    are exactly the label/negative nodes and no label edge is a message-passing edge."""
    n = {t: data[t].num_nodes for t in data.node_types}
    seeds = {t: [] for t in data.node_types}
    exclude = {}
    for et in data.edge_types:
        if "edge_label_index" not in out[et]:
            continue
        s, r, d = et
        eli, neg_dst = out[et].edge_label_index, out[et].neg_dst
        assert eli.dtype == neg_dst.dtype == torch.long
        assert eli.device.type == neg_dst.device.type == torch.device(device).type
        b = eli.shape[1]
        assert b > 0 and neg_dst.shape == (b, loader.num_negatives)
        # label and negative nodes are seeds (the first batch_size local ids of their type)
        assert (eli[0] < out[s].batch_size).all() and (eli[1] < out[d].batch_size).all()
        assert ((neg_dst >= 0) & (neg_dst < out[d].batch_size)).all()
        pos, neg = supervision(out, et)
        assert torch.isin(keys_of(pos, n[d]), keys_of(data[et].edge_index, n[d])).all()
        assert ((neg >= 0) & (neg < n[d])).all()
        seeds[s].append(pos[0])
        seeds[d] += [pos[1], neg.flatten()]
        # no leakage: the labels are in neither direction among the message-passing edges
        fwd, rev = keys_of(pos, n[d]), keys_of(pos.flip(0), n[s])
        assert not torch.isin(fwd, keys_of(message_edges(out, et), n[d])).any()
        assert not torch.isin(rev, keys_of(message_edges(out, (d, r, s)), n[s])).any()
        exclude.setdefault(et, []).append(fwd)
        exclude.setdefault((d, r, s), []).append(rev)
    want = {t: torch.unique(torch.cat(v)) for t, v in seeds.items() if v}
    for t in data.node_types:
        assert out[t].batch_size == (want[t].numel() if t in want else 0)
    exclude = {et: torch.cat(v) for et, v in exclude.items()}
    check_subgraph(data, out, want, {et: FAN for et in data.edge_types}, exclude, False, device)


def epoch_supervision(data, batches):
    got = {}
    for out in batches:
        for et in data.edge_types:
            if "edge_label_index" in out[et]:
                got.setdefault(et, []).append(supervision(out, et)[0])
    return {et: torch.cat(v, 1) for et, v in got.items()}


def same_edges(a: torch.Tensor, b: torch.Tensor, n_dst: int) -> bool:
    """Equal as multisets of columns."""
    return torch.equal(torch.sort(keys_of(a, n_dst)).values, torch.sort(keys_of(b, n_dst)).values)


def test_epoch_batches_cover_balanced_edges_without_leakage(graph, device):
    loader = LinkNeighborLoader(graph, FAN, batch_size=64, num_negatives=3, seed=5, device=device)
    sizes = {et: e.shape[1] for et, e in link_edges(graph).items()}
    counts = balanced_counts(sizes)
    assert len(set(counts.values())) == 1  # every link type cut to the smallest (110)
    for epoch in (0, 1):
        ref = loader.epoch_edges(epoch)
        assert {et: e.shape[1] for et, e in ref.items()} == counts
        batches = list(loader.iter_epoch(epoch))
        total = sum(counts.values())
        assert len(batches) == loader.num_batches(epoch) == -(-total // 64)
        per_batch = [
            sum(b[et].edge_label_index.shape[1] for et in b.edge_types if "neg_dst" in b[et])
            for b in batches
        ]
        assert per_batch == [64] * (len(batches) - 1) + [total - 64 * (len(batches) - 1)]
        for out in batches:
            check_batch(graph, loader, out, device)
        # each balanced edge exactly once per epoch
        got = epoch_supervision(graph, batches)
        assert set(got) == set(ref)
        for et, e in ref.items():
            n_dst = graph[et[2]].num_nodes
            assert torch.unique(keys_of(got[et], n_dst)).numel() == got[et].shape[1]
            assert same_edges(got[et], e, n_dst)
    e0, e1 = loader.epoch_edges(0), loader.epoch_edges(1)
    assert all(
        not same_edges(e0[et], e1[et], graph[et[2]].num_nodes)
        for et in e0
        if e0[et].shape[1] < sizes[et]
    )


def test_resume_and_prefetch_reproduce_the_same_batches(graph):
    kw = {"num_neighbors": FAN, "batch_size": 48, "num_negatives": 2, "seed": 3}
    loader = LinkNeighborLoader(graph, **kw)
    full = list(loader.iter_epoch(2))
    assert len(full) == loader.num_batches(2) > 5
    for b in (0, 1, 5, len(full) - 1, len(full)):
        tail = list(loader.iter_epoch(2, start_batch=b))
        assert len(tail) == len(full) - b
        for x, y in zip(tail, full[b:], strict=True):
            assert_same_hetero(x, y)
    # prefetching in a background thread, or a fresh loader, changes nothing
    for other in (LinkNeighborLoader(graph, **kw, prefetch=2), LinkNeighborLoader(graph, **kw)):
        for x, y in zip(other.iter_epoch(2), full, strict=True):
            assert_same_hetero(x, y)
    pre = LinkNeighborLoader(graph, **kw, prefetch=2)
    for x, y in zip(pre.iter_epoch(2, start_batch=4), full[4:], strict=True):
        assert_same_hetero(x, y)
    # another epoch or another seed gives other batches
    for other in (
        loader.iter_epoch(3),
        LinkNeighborLoader(graph, **{**kw, "seed": 4}).iter_epoch(2),
    ):
        first = next(iter(other))
        assert any(
            "neg_dst" in full[0][et]
            and "neg_dst" in first[et]
            and not torch.equal(supervision(full[0], et)[0], supervision(first, et)[0])
            for et in graph.edge_types
        )


def test_unbalanced_epoch_uses_every_edge(graph):
    loader = LinkNeighborLoader(graph, FAN, batch_size=512, balance_target=None, seed=1)
    edges = link_edges(graph)
    total = sum(e.shape[1] for e in edges.values())
    assert total * 2 == sum(graph[et].edge_index.shape[1] for et in graph.edge_types)
    assert loader.num_batches(0) == -(-total // 512)
    for epoch in (0, 7):
        assert all(torch.equal(loader.epoch_edges(epoch)[et], e) for et, e in edges.items())
    batches = list(loader.iter_epoch(0))
    assert len(batches) == loader.num_batches(0)
    got = epoch_supervision(graph, batches)
    for et, e in edges.items():
        assert same_edges(got[et], e, graph[et[2]].num_nodes)
    check_batch(graph, loader, batches[0], "cpu")


def test_max_epoch_edges_is_a_fresh_sample_of_the_epoch(graph):
    """``max_epoch_edges``: exactly that many distinct supervision edges per epoch, drawn
    from the balanced edges, a different sample in another epoch, replayable."""
    cap, size = 700, 128
    loader = LinkNeighborLoader(
        graph, FAN, batch_size=size, balance_target=None, seed=1, max_epoch_edges=cap
    )
    assert loader.num_batches(0) == -(-cap // size) == 6
    edges = link_edges(graph)

    def drawn(epoch: int) -> set[tuple[int, int]]:
        batches = list(loader.iter_epoch(epoch))
        assert len(batches) == 6
        out = set()
        for et, e in epoch_supervision(graph, batches).items():
            k = keys_of(e, graph[et[2]].num_nodes)
            assert torch.isin(k, keys_of(edges[et], graph[et[2]].num_nodes)).all()
            out |= {(list(edges).index(et), key) for key in k.tolist()}
        return out

    first, second = drawn(0), drawn(1)
    assert len(first) == len(second) == cap  # distinct: drawn without replacement
    assert first != second and drawn(1) == second
    unlimited = LinkNeighborLoader(graph, FAN, batch_size=size, balance_target=None)
    big = LinkNeighborLoader(
        graph, FAN, batch_size=size, balance_target=None, max_epoch_edges=10**9
    )
    assert big.num_batches(0) == unlimited.num_batches(0)


def test_balanced_epoch_keeps_the_edge_budget(graph):
    """With balancing, ``max_epoch_edges`` is the epoch's size even when the rarest type
    is tiny: the budget is spread as evenly as the types' sizes allow (water-filling: a
    type smaller than its share gives all its edges, the others share the rest), drawn
    from all of each type's edges, no edge twice, replayable."""
    edges = link_edges(graph)
    sizes = {et: e.shape[1] for et, e in edges.items()}
    smallest, largest = min(sizes.values()), max(sizes.values())
    budget = smallest * len(sizes) + 2 * (largest - smallest) // 3  # the rarest is below a share
    loader = LinkNeighborLoader(
        graph, FAN, batch_size=128, balance_target="min", seed=3, max_epoch_edges=budget
    )
    assert loader.num_batches(0) == -(-budget // 128)
    got = loader.epoch_edges(0)
    counts = {et: e.shape[1] for et, e in got.items()}
    assert sum(counts.values()) == budget
    share = max(counts.values())
    for et, n in counts.items():  # all of a type below the share, the share otherwise
        assert n == sizes[et] if sizes[et] < share else n in (share, share - 1)
    assert counts[min(sizes, key=sizes.get)] == smallest
    for et, e in got.items():
        k = keys_of(e, graph[et[2]].num_nodes)
        assert torch.isin(k, keys_of(edges[et], graph[et[2]].num_nodes)).all()
        assert len(torch.unique(k)) == len(k)  # no edge twice
    assert all(torch.equal(got[et], e) for et, e in loader.epoch_edges(0).items())
    assert any(not torch.equal(got[et], e) for et, e in loader.epoch_edges(1).items())
    batches = list(loader.iter_epoch(0))
    assert sum(e.shape[1] for e in epoch_supervision(graph, batches).values()) == budget
    everything = sum(sizes.values())
    big = LinkNeighborLoader(graph, FAN, batch_size=128, max_epoch_edges=10 * everything)
    assert sum(e.shape[1] for e in big.epoch_edges(0).values()) == everything


def test_fill_counts_water_fills():
    assert fill_counts({"a": 5, "b": 100, "c": 100}, 105) == {"a": 5, "b": 50, "c": 50}
    assert fill_counts({"a": 5, "b": 100, "c": 100}, 106) == {"a": 5, "b": 51, "c": 50}
    assert fill_counts({"a": 5, "b": 30, "c": 100}, 100) == {"a": 5, "b": 30, "c": 65}
    assert fill_counts({"a": 5, "b": 30}, 100) == {"a": 5, "b": 30}
    assert fill_counts({"a": 0, "b": 7}, 3) == {"a": 0, "b": 3}


def test_balance_subset_and_cap(graph):
    edges = link_edges(graph)
    sizes = {et: e.shape[1] for et, e in edges.items()}
    big = sorted(sizes, key=sizes.get)[-2:]
    loader = LinkNeighborLoader(graph, FAN, batch_size=256, balance_target=1000, balance=big)
    got = {et: e.shape[1] for et, e in loader.epoch_edges(0).items()}
    assert got == {et: min(n, 1000) if et in big else n for et, n in sizes.items()}
    assert loader.num_batches(0) == -(-sum(got.values()) // 256)


def negative_counts(graph, sampling, num_negatives=200, seed=0):
    et = ("audiobook", "co", "audiobook")
    loader = LinkNeighborLoader(graph, [2], num_negatives=num_negatives, negative_sampling=sampling)
    pos = link_edges(graph)[et]
    out = loader.sample_batch({et: pos}, torch.Generator().manual_seed(seed))
    got, neg = supervision(out, et)
    assert torch.equal(got, pos)
    assert neg.shape == (pos.shape[1], num_negatives)
    return torch.bincount(neg.flatten(), minlength=graph["audiobook"].num_nodes).numpy()


def _chi2_999(df: int) -> float:
    """Critical value at p = 0.001 (table, else the Wilson-Hilferty approximation)."""
    z = 3.0902
    return CHI2_999.get(df) or df * (1 - 2 / (9 * df) + z * (2 / (9 * df)) ** 0.5) ** 3


def _audiobook_degree(graph) -> torch.Tensor:
    return sum(
        torch.bincount(graph[et].edge_index[1], minlength=graph["audiobook"].num_nodes)
        for et in graph.edge_types
        if et[2] == "audiobook"
    ).double()


def test_uniform_negatives_chi_square(graph):
    counts = negative_counts(graph, "uniform")
    active = (_audiobook_degree(graph) > 0).numpy()
    assert 0 < active.sum() < active.size  # the graph has isolated audiobooks
    assert counts[~active].sum() == 0  # never an isolated node
    n = int(active.sum())
    assert chi_square(counts[active], np.full(n, counts.sum() / n)) < _chi2_999(n - 1)


def test_popularity_negatives_follow_degree_power(graph):
    counts = negative_counts(graph, "popularity")
    deg = _audiobook_degree(graph)
    assert counts[(deg == 0).numpy()].sum() == 0
    active = (deg > 0).numpy()
    p = (deg**0.75 / (deg**0.75).sum()).numpy()[active]
    assert chi_square(counts[active], counts.sum() * p) < _chi2_999(int(active.sum()) - 1)
    # and clearly not uniform
    assert chi_square(counts, np.full(counts.size, counts.sum() / counts.size)) > 1000


def test_popularity_loader_batches_are_valid(graph, device):
    loader = LinkNeighborLoader(
        graph,
        FAN,
        batch_size=128,
        num_negatives=4,
        negative_sampling="popularity",
        seed=2,
        device=device,
    )
    batches = list(loader.iter_epoch(0))
    for out in batches:
        check_batch(graph, loader, out, device)
    again = list(loader.iter_epoch(0))
    for x, y in zip(batches, again, strict=True):
        assert_same_hetero(x, y)


def test_bad_negative_sampling_raises(graph):
    with pytest.raises(ValueError, match="negative_sampling"):
        LinkNeighborLoader(graph, FAN, negative_sampling="hard")


def blocked_in_put(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == "put" and "queue" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def test_abandoned_prefetching_epoch_stops_its_thread(graph):
    """Stopping early (e.g. a step budget) once the prefetch queue is full must not leave
    the background thread blocked forever on the full queue, holding its batches."""
    loader = LinkNeighborLoader(graph, FAN, batch_size=32, prefetch=2)
    before = set(threading.enumerate())
    it = loader.iter_epoch(0)
    next(it)
    started = set(threading.enumerate()) - before
    assert len(started) == 1
    (worker,) = started
    deadline = time.monotonic() + 20
    while not blocked_in_put(worker) and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the worker is ahead by `prefetch` batches
    assert blocked_in_put(worker)
    it.close()
    assert not worker.is_alive(), "prefetch thread still running after the epoch was closed"


def test_closing_waits_for_the_batch_in_progress():
    """A consumer that leaves while the worker is inside the generator (sampling, in
    native code) returns only once the worker has ended: a thread still sampling when the
    interpreter exits aborts the process."""
    from audiograph.samplers.link_loader import _prefetch

    inside = threading.Event()

    def slow():
        for i in range(10):
            inside.set()
            time.sleep(0.3)
            yield i

    before = set(threading.enumerate())
    it = _prefetch(slow(), 1)
    assert next(it) == 0
    (worker,) = set(threading.enumerate()) - before
    inside.clear()
    assert inside.wait(5)  # the worker is producing item 1 or 2 now
    it.close()
    assert not worker.is_alive()
