"""Shared helpers of the sampler tests (imported by the test modules): random heterogeneous
graphs and a reference checker of every invariant of a NeighborSampler output."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from torch_geometric.data import HeteroData

# chi-square critical values at p = 0.001 (scipy.stats.chi2.ppf(0.999, df), checked against
# scipy in test_adjacency.py when scipy is installed)
CHI2_999 = {
    2: 13.816,
    4: 18.467,
    5: 20.515,
    9: 27.877,
    11: 31.264,
    19: 43.820,
    39: 72.055,
    1139: 1292.208,
}

TYPES = ["a", "b", "c"]


def chi_square(observed, expected) -> float:
    """Pearson's statistic ``sum((O - E)^2 / E)``."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert o.shape == e.shape and (e > 0).all()
    return float(((o - e) ** 2 / e).sum())


def random_hetero(seed: int, sizes: list[int], densities: list[float]) -> HeteroData:
    """Random ``HeteroData``: one node type per size (features ``x`` ``[n, 3]``), every
    ordered type pair as edge type ``(s, "co", d)`` with density ``densities[i]`` (0 gives
    an empty edge type), distinct edges in random order, self-loops allowed, weights > 0."""
    rng = np.random.default_rng(seed)
    types = TYPES[: len(sizes)]
    data = HeteroData()
    for t, n in zip(types, sizes, strict=True):
        data[t].x = torch.from_numpy(rng.standard_normal((n, 3)).astype(np.float32))
        data[t].num_nodes = n
    i = 0
    for s, ns in zip(types, sizes, strict=True):
        for d, nd in zip(types, sizes, strict=True):
            src, dst = np.nonzero(rng.random((ns, nd)) < densities[i])
            order = rng.permutation(src.size)
            data[s, "co", d].edge_index = torch.from_numpy(np.stack([src[order], dst[order]]))
            data[s, "co", d].edge_weight = torch.from_numpy(
                rng.uniform(0.5, 5.0, src.size).astype(np.float32)
            )
            i += 1
    return data


@st.composite
def hetero_graphs(draw, max_nodes: int = 12) -> HeteroData:
    n_types = draw(st.integers(2, 3))
    sizes = [draw(st.integers(0, max_nodes)) for _ in range(n_types)]
    densities = [draw(st.sampled_from([0.0, 0.15, 0.4, 0.9])) for _ in range(n_types**2)]
    return random_hetero(draw(st.integers(0, 2**31 - 1)), sizes, densities)


@st.composite
def seed_sets(draw, data: HeteroData) -> dict[str, torch.Tensor]:
    """Unique seeds of some node types, in random (unsorted) order; a type may be absent
    or have zero seeds."""
    seeds = {}
    for t in data.node_types:
        if draw(st.booleans()) or not seeds:
            n = data[t].num_nodes
            perm = draw(st.permutations(range(n)))
            seeds[t] = torch.tensor(perm[: draw(st.integers(0, n))], dtype=torch.long)
    return seeds


@st.composite
def fan_outs(draw, data: HeteroData):
    """``(spec, resolved)``: a list or dict fan-out (with ``"default"``, -1 and 0) and the
    per-edge-type list it means."""
    hops = draw(st.integers(1, 3))
    ks = st.lists(st.sampled_from([-1, 0, 1, 2, 3, 5]), min_size=hops, max_size=hops)
    default = draw(ks)
    if draw(st.booleans()):
        return default, {et: default for et in data.edge_types}
    spec: dict = {"default": default}
    for et in data.edge_types:
        if draw(st.booleans()):
            spec[et] = draw(ks)
    return spec, {et: spec.get(et, default) for et in data.edge_types}


def in_degree(data: HeteroData, et) -> torch.Tensor:
    return torch.bincount(data[et].edge_index[1], minlength=data[et[2]].num_nodes)


def check_subgraph(data, out, seeds, fanout, exclude=None, exact=True, device="cpu"):
    """Assert every documented invariant of ``NeighborSampler.sample`` output ``out``.

    ``fanout`` is the resolved ``{edge_type: [k_1, ...]}``. With ``exact`` every frontier
    node of hop ``h`` gets exactly ``min(deg, k_h)`` edges per edge type (``<=`` otherwise,
    e.g. when ``exclude`` drops sampled edges).
    """
    hops = len(next(iter(fanout.values())))
    n_id, bounds = {}, {}
    for t in data.node_types:
        nid = out[t].n_id
        assert nid.device.type == torch.device(device).type
        nid = nid.cpu()
        n_id[t] = nid
        n = data[t].num_nodes
        assert nid.dtype == torch.long
        assert torch.unique(nid).numel() == nid.numel(), f"duplicate n_id of {t}"
        assert ((nid >= 0) & (nid < n)).all()
        s = seeds.get(t, torch.empty(0, dtype=torch.long)).cpu()
        assert out[t].batch_size == s.numel()
        assert torch.equal(nid[: s.numel()], s), f"seeds of {t} not first / in order"
        nsn = list(out[t].num_sampled_nodes)
        assert len(nsn) == hops + 1 and nsn[0] == s.numel() and sum(nsn) == nid.numel()
        assert out[t].num_nodes == nid.numel()
        bounds[t] = np.cumsum([0, *nsn]).tolist()
        x = data[t].get("x")
        if x is not None and x.shape[-1] > 0:
            assert torch.equal(out[t].x.cpu(), x[nid])
    cand = {(h, t): [] for h in range(hops) for t in data.node_types}
    for et in data.edge_types:
        s, _, d = et
        ei, e_id = out[et].edge_index.cpu(), out[et].e_id.cpu()
        nse = list(out[et].num_sampled_edges)
        assert ei.dtype == torch.long and e_id.dtype == torch.long
        assert ei.shape == (2, e_id.numel())
        assert len(nse) == hops and sum(nse) == e_id.numel()
        src, dst = n_id[s][ei[0]], n_id[d][ei[1]]
        # every sampled edge is a real edge of its type and e_id points at it
        assert torch.equal(data[et].edge_index[:, e_id], torch.stack([src, dst]))
        keys = src * data[d].num_nodes + dst
        assert torch.unique(keys).numel() == keys.numel(), f"duplicate edge in {et}"
        if exclude is not None and et in exclude:
            assert not torch.isin(keys, exclude[et].cpu()).any(), f"excluded edge in {et}"
        deg = in_degree(data, et)
        excl_deg = torch.zeros_like(deg)
        if exclude is not None and et in exclude:
            ek = data[et].edge_index[0] * data[d].num_nodes + data[et].edge_index[1]
            hit = torch.isin(ek, exclude[et].cpu())
            excl_deg = torch.bincount(data[et].edge_index[1][hit], minlength=deg.numel())
        ebounds = np.cumsum([0, *nse]).tolist()
        for h in range(hops):
            lo, hi = ebounds[h], ebounds[h + 1]
            flo, fhi = bounds[d][h], bounds[d][h + 1]
            dl, sl = ei[1, lo:hi], ei[0, lo:hi]
            # hop h expands exactly the nodes first reached at hop h - 1 (the frontier)
            assert ((dl >= flo) & (dl < fhi)).all(), f"{et} hop {h}: not a frontier node"
            assert (sl < bounds[s][h + 2]).all(), f"{et} hop {h}: source reached later"
            got = torch.bincount(dl - flo, minlength=fhi - flo)
            k = fanout[et][h]
            want = deg[n_id[d][flo:fhi]]
            if k >= 0:
                want = want.clamp(max=k)
            if exact:
                assert torch.equal(got, want), f"{et} hop {h}: fan-out {got} != {want}"
            else:  # sampled min(deg, k), then dropped at most the excluded in-edges
                assert (got <= want).all(), f"{et} hop {h}: fan-out {got} > {want}"
                low = want - excl_deg[n_id[d][flo:fhi]]
                assert (got >= low).all(), f"{et} hop {h}: fan-out {got} < {low}"
            cand[h, s].append(src[lo:hi])
    # the nodes new at hop h + 1 are the sources of hop h not seen before, first-seen order
    for h in range(hops):
        for t in data.node_types:
            c = torch.cat(cand[h, t]) if cand[h, t] else torch.empty(0, dtype=torch.long)
            c = c[~torch.isin(c, n_id[t][: bounds[t][h + 1]])].numpy()
            uniq, first = np.unique(c, return_index=True)
            want = torch.from_numpy(uniq[np.argsort(first)])
            assert torch.equal(n_id[t][bounds[t][h + 1] : bounds[t][h + 2]], want.long())


def subgraph_edges(out, et) -> torch.Tensor:
    """Global ``[2, E]`` edges of ``out[et]``."""
    s, _, d = et
    ei = out[et].edge_index
    return torch.stack([out[s].n_id[ei[0]], out[d].n_id[ei[1]]]).cpu()


def assert_same_hetero(a: HeteroData, b: HeteroData) -> None:
    """Identical stores, keys and values (tensors compared exactly)."""
    assert a.node_types == b.node_types and a.edge_types == b.edge_types
    for sa, sb in zip(a.node_stores + a.edge_stores, b.node_stores + b.edge_stores, strict=True):
        assert set(sa.keys()) == set(sb.keys())
        for key in sa.keys():  # noqa: SIM118 - storage keys(), not a dict
            va, vb = sa[key], sb[key]
            if isinstance(va, torch.Tensor):
                assert va.dtype == vb.dtype and torch.equal(va, vb), key
            else:
                assert va == vb, key
