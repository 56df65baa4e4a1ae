"""Heterogeneous k-hop neighbour sampling in pure PyTorch (CPU or CUDA).

Seeds may be of several node types at once. Fan-outs are given per hop, either one
list for every edge type or a dict ``{edge_type: [k1, k2, ...]}`` with a ``default``
(like PyG's ``NumNeighbors``); ``-1`` takes all neighbours. Hop ``h`` samples the
in-neighbours of the nodes first reached at hop ``h - 1`` (seeds at hop 0); nodes are
deduplicated per type across hops (PyG's non-disjoint mode).

The output is a :class:`torch_geometric.data.HeteroData` in PyG's ``NeighborLoader``
layout: per node type ``n_id`` (global ids, seeds first and in order), ``x`` (features
of the sampled nodes when the graph has them), ``num_sampled_nodes`` (per hop) and
``batch_size`` (number of seeds); per edge type ``edge_index`` (local indices, row 0 =
source), ``e_id`` (ids into the original ``edge_index``) and ``num_sampled_edges`` (per hop),
ready for ``trim_to_layer``.
"""

from __future__ import annotations

import torch
from torch_geometric.data import HeteroData

from audiograph.core.types import EdgeType
from audiograph.samplers.adjacency import Adjacency, sample_neighbors, take
from audiograph.samplers.fused_hop import fused_hop
from audiograph.samplers.threads import FREE_CORES, torch_threads

FanOut = list[int] | dict[EdgeType | str, list[int]]
_NEVER = torch.iinfo(torch.long).max


class NeighborSampler:
    """k-hop heterogeneous neighbour sampler over a co-interaction ``HeteroData``.

    Args:
        data: graph with ``edge_index`` (and ``edge_weight`` for weighted sampling) per
            edge type; node features ``x`` are gathered for sampled nodes when present.
        num_neighbors: fan-out per hop (list), or dict per edge type with key
            ``"default"`` for the others.
        weighted: sample proportionally to ``edge_weight`` (co-interaction count).
        device: where adjacency, features and sampling live (default: CPU).
        fused: sample each hop of each edge type in one numba pass
            (:mod:`~audiograph.samplers.fused_hop`; same output as the torch ops); default:
            on CPU with uniform sampling, the only case it supports.
    """

    def __init__(
        self,
        data: HeteroData,
        num_neighbors: FanOut,
        weighted: bool = False,
        device: torch.device | str = "cpu",
        fused: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.weighted = weighted
        self.fused = (self.device.type == "cpu" and not weighted) if fused is None else fused
        if self.fused and (self.device.type != "cpu" or weighted):
            raise ValueError("the fused hop runs on CPU with uniform sampling only")
        self.node_types = list(data.node_types)
        self.num_nodes = {t: int(data[t].num_nodes) for t in self.node_types}
        self.edge_types: list[EdgeType] = list(data.edge_types)
        self.fanout = _fanout(num_neighbors, self.edge_types)
        self.num_hops = len(next(iter(self.fanout.values()))) if self.fanout else 0
        self.adj: dict[EdgeType, Adjacency] = {}
        for et in self.edge_types:
            s, _, d = et
            w = data[et].get("edge_weight") if weighted else None
            self.adj[et] = Adjacency.from_edge_index(
                data[et].edge_index.to(self.device),
                self.num_nodes[s],
                self.num_nodes[d],
                None if w is None else w.to(self.device),
            )
        self.x = {
            t: data[t].x.to(self.device)
            for t in self.node_types
            if data[t].get("x") is not None and data[t].x.shape[-1] > 0
        }
        # global id -> local id per type (-1 = not sampled); reset after every call
        self._local = {
            t: torch.full((n,), -1, dtype=torch.long, device=self.device)
            for t, n in self.num_nodes.items()
        }
        self._first = {  # the torch path's first-occurrence scratch (the fused hop needs none)
            t: torch.full((n,), _NEVER, dtype=torch.long, device=self.device)
            for t, n in self.num_nodes.items()
            if not self.fused
        }

    def sample(
        self,
        seeds: dict[str, torch.Tensor],
        generator: torch.Generator | None = None,
        exclude: dict[EdgeType, torch.Tensor] | None = None,
    ) -> HeteroData:
        """Sample the k-hop subgraph around ``seeds``.

        Args:
            seeds: ``{node_type: global ids [B_t]}``; ids must be unique per type.
            generator: random generator on the sampler's device (seeded by the caller).
            exclude: ``{edge_type: keys}`` of edges never to sample, ``key = src * n_dst +
                dst`` (global ids) — used to keep supervision edges out of message passing.

        Returns:
            the sampled subgraph (see module docstring).
        """
        if self.device.type != "cpu":
            return self._sample(seeds, generator, exclude)
        with torch_threads(FREE_CORES.free()):  # the cores other processes leave free
            return self._sample(seeds, generator, exclude)

    def _sample(
        self,
        seeds: dict[str, torch.Tensor],
        generator: torch.Generator | None,
        exclude: dict[EdgeType, torch.Tensor] | None,
    ) -> HeteroData:
        if self.fused and exclude is not None:  # the fused hop binary-searches sorted keys
            exclude = {et: torch.sort(keys.long()).values for et, keys in exclude.items()}
        nodes = {t: [torch.empty(0, dtype=torch.long, device=self.device)] for t in self.node_types}
        count = dict.fromkeys(self.node_types, 0)
        frontier: dict[str, torch.Tensor] = {}
        start = dict.fromkeys(self.node_types, 0)  # local id of each frontier's first node
        for t, ids in seeds.items():
            ids = ids.to(self.device).long()
            self._local[t][ids] = torch.arange(ids.numel(), device=self.device)
            nodes[t] = [ids]
            count[t] = ids.numel()
            frontier[t] = ids
        hop_nodes = {t: [count[t]] for t in self.node_types}
        rows: dict[EdgeType, list] = {et: [] for et in self.edge_types}
        cols: dict[EdgeType, list] = {et: [] for et in self.edge_types}
        eids: dict[EdgeType, list] = {et: [] for et in self.edge_types}
        hop_edges: dict[EdgeType, list[int]] = {et: [] for et in self.edge_types}
        try:
            for hop in range(self.num_hops):
                added = {t: [] for t in self.node_types}
                for et in self.edge_types:
                    s, _, d = et
                    k = self.fanout[et][hop]
                    dst = frontier.get(d)
                    if k == 0 or dst is None or dst.numel() == 0:
                        hop_edges[et].append(0)
                        continue
                    adj = self.adj[et]
                    excl = exclude.get(et) if exclude is not None else None
                    if self.fused:
                        row, which, e_id, new, count[s] = fused_hop(
                            adj,
                            dst,
                            k,
                            generator,
                            self._local[s],
                            count[s],
                            excl,
                            self.num_nodes[d],
                        )
                    else:
                        slot, which = sample_neighbors(adj, dst, k, self.weighted, generator)
                        src = take(adj.row, slot)
                        if excl is not None and excl.numel():
                            key = src * self.num_nodes[d] + take(dst, which)
                            keep = torch.nonzero(~torch.isin(key, excl)).flatten()
                            slot, which, src = take(slot, keep), take(which, keep), take(src, keep)
                        new = self._add(s, src, count)
                        row, e_id = take(self._local[s], src), take(adj.perm, slot)
                    added[s].append(new)
                    rows[et].append(row)
                    cols[et].append(which + start[d])
                    eids[et].append(e_id)
                    hop_edges[et].append(int(row.numel()))
                for t in self.node_types:
                    new = torch.cat(added[t]) if added[t] else nodes[t][0][:0]
                    start[t] = count[t] - new.numel()
                    nodes[t].append(new)
                    frontier[t] = new
                    hop_nodes[t].append(int(new.numel()))
            return self._output(seeds, nodes, hop_nodes, rows, cols, eids, hop_edges)
        finally:
            for t in self.node_types:
                self._local[t].index_fill_(0, torch.cat(nodes[t]), -1)

    def _add(self, t: str, cand: torch.Tensor, count: dict[str, int]) -> torch.Tensor:
        """Give local ids to the not-yet-seen nodes of ``cand`` in first-occurrence order
        (no sort: the first position of each node is found with a scatter-min)."""
        unseen = take(cand, torch.nonzero(take(self._local[t], cand) < 0).flatten())
        if unseen.numel() == 0:
            return unseen
        pos = torch.arange(unseen.numel(), device=self.device)
        first = self._first[t]
        first.scatter_reduce_(0, unseen, pos, "amin")
        new = take(unseen, torch.nonzero(take(first, unseen) == pos).flatten())
        first.index_fill_(0, unseen, _NEVER)
        self._local[t].index_copy_(
            0, new, torch.arange(count[t], count[t] + new.numel(), device=self.device)
        )
        count[t] += new.numel()
        return new

    def _output(self, seeds, nodes, hop_nodes, rows, cols, eids, hop_edges) -> HeteroData:
        out = HeteroData()
        for t in self.node_types:
            n_id = torch.cat(nodes[t])
            out[t].n_id = n_id
            out[t].num_nodes = n_id.numel()
            out[t].num_sampled_nodes = hop_nodes[t]
            out[t].batch_size = int(seeds[t].numel()) if t in seeds else 0
            if t in self.x:
                out[t].x = torch.index_select(self.x[t], 0, n_id)
        empty = torch.empty(0, dtype=torch.long, device=self.device)
        for et in self.edge_types:
            r = torch.cat(rows[et]) if rows[et] else empty
            c = torch.cat(cols[et]) if cols[et] else empty
            out[et].edge_index = torch.stack([r, c])
            out[et].e_id = torch.cat(eids[et]) if eids[et] else empty
            out[et].num_sampled_edges = hop_edges[et]
        return out


def _fanout(num_neighbors: FanOut, edge_types: list[EdgeType]) -> dict[EdgeType, list[int]]:
    if isinstance(num_neighbors, dict):
        default = num_neighbors.get("default")
        out = {}
        for et in edge_types:
            k = num_neighbors.get(et, default)
            if k is None:
                raise ValueError(f"no fan-out for edge type {et} and no 'default'")
            out[et] = list(k)
    else:
        out = {et: list(num_neighbors) for et in edge_types}
    if len({len(v) for v in out.values()}) > 1:
        raise ValueError("every edge type needs the same number of hops")
    return out
