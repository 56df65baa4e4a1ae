"""Layer-wise full-graph inference of a trained HGNN (every node, every neighbour, no
sampling), chunked to bound memory and shareable over ``torchrun`` ranks, and the
inductive embedding of new nodes from their text alone. Used by :mod:`.export`."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import HeteroData

from audiograph.core.distributed import World, share_rows
from audiograph.core.errors import ContractError
from audiograph.core.types import EdgeType
from audiograph.hgnn.maxpool_infer import BlockedCSC, block_rows, segment_max
from audiograph.hgnn.model import HeteroSAGE, MaxPoolRelation
from audiograph.samplers.adjacency import Adjacency


def _messages(
    conv: nn.Module,
    h_src: torch.Tensor,
    src: torch.Tensor,
    dst_local: torch.Tensor,
    h_dst: torch.Tensor,
) -> torch.Tensor:
    """One relation's output ``[n_dst, hidden]`` for destinations ``h_dst`` whose in-edges
    are ``src[j] -> dst_local[j]`` (``src`` indexes the full ``h_src``). Only the distinct
    sources are gathered, so memory is O(edges of the chunk)."""
    uniq, inv = torch.unique(src, return_inverse=True)
    x_src = h_src.index_select(0, uniq).to(h_dst.device)
    edge_index = torch.stack([inv.view(-1), dst_local]).to(h_dst.device)
    return conv((x_src, h_dst), edge_index)


def _update(
    model: HeteroSAGE, i: int, t: str, h_dst: torch.Tensor, msgs: list[torch.Tensor]
) -> torch.Tensor:
    """``self_lin + sum of relations`` (+ relu except after the last layer), as ``layer``."""
    z = model.self_lin[i][t](h_dst)
    if msgs:  # HeteroConv(aggr="sum") stacks relation outputs and sums them
        z = z + torch.stack(msgs).sum(0)
    return F.relu(z) if i < len(model.convs) - 1 else z


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _relation_chunk(
    conv: nn.Module,
    table: torch.Tensor | None,
    h_src: torch.Tensor,
    adj: _Csc,
    lo: int,
    hi: int,
    h_dst: torch.Tensor,
) -> torch.Tensor:
    """One relation's output ``[hi - lo, hidden]`` for destinations ``lo:hi`` with all their
    in-neighbours (CSC). Max-pool relations read the precomputed ``table`` =
    ``relu(W_r h_src + b_r)`` (:func:`audiograph.hgnn.maxpool_infer.segment_max`); other convs run
    their PyG forward on the chunk."""
    if table is not None:
        return segment_max(table, adj.colptr, adj.row, lo, hi)
    ptr = adj.colptr
    deg = ptr[lo + 1 : hi + 1] - ptr[lo:hi]
    src = adj.row[int(ptr[lo]) : int(ptr[hi])]
    dst_local = torch.repeat_interleave(torch.arange(hi - lo), deg)
    return _messages(conv, h_src, src, dst_local, h_dst)


class _Csc(NamedTuple):
    """In-edges of one edge type: ``colptr`` ``[n_dst + 1]``, ``row`` ``[E]`` source ids."""

    colptr: torch.Tensor
    row: torch.Tensor
    num_src: int


def _csc(data: HeteroData, et: EdgeType, symmetric: bool) -> _Csc:
    """CSC of ``et``. With ``symmetric`` (co-interaction graphs store both directions,
    each sorted by (src, dst)), the reverse type's edges are already grouped by ``et``'s
    destination: its two rows are used as they are (checked, no copy, no sort)."""
    n_src, n_dst = data[et[0]].num_nodes, data[et[2]].num_nodes
    rev = (et[2], et[1], et[0])
    if symmetric and rev in data.edge_types:
        dst, src = data[rev].edge_index
        if dst.numel() < 2 or bool((dst[1:] >= dst[:-1]).all()):
            colptr = torch.zeros(n_dst + 1, dtype=torch.long)
            colptr[1:] = torch.bincount(dst, minlength=n_dst).cumsum(0)
            return _Csc(colptr, src, n_src)
    a = Adjacency.from_edge_index(data[et].edge_index, n_src, n_dst)
    return _Csc(a.colptr, a.row, n_src)


def _relu_table(
    lin: nn.Linear, h_src: torch.Tensor, chunk_size: int, device: str, world: World = World()
) -> torch.Tensor:
    """``relu(W_r h_u + b_r)`` for every source node: ``[n_src, out]`` float32 on CPU."""
    table = torch.empty(h_src.shape[0], lin.out_features)
    return _shared(table, chunk_size, lambda lo, hi: F.relu_(lin(h_src[lo:hi].to(device))), world)


def _shared(
    out: torch.Tensor, chunk_size: int, compute: Any, world: World = World()
) -> torch.Tensor:
    """``out`` with rows ``lo:hi`` = ``compute(lo, hi)`` for every chunk of ``chunk_size``
    rows. On several ranks each computes every ``size``-th chunk (the same chunk shapes as
    one process, so the same bits) and the chunks are then broadcast to every rank."""
    chunks = _chunks(out.shape[0], chunk_size)
    for lo, hi in chunks[world.rank :: world.size]:
        out[lo:hi] = compute(lo, hi).cpu()
    return share_rows(out, [chunks[r :: world.size] for r in range(world.size)], world)


@torch.inference_mode()
def full_graph_embeddings(
    model: HeteroSAGE,
    data: HeteroData,
    chunk_size: int = 65536,
    device: str = "cpu",
    symmetric: bool = False,
    world: World = World(),
) -> dict[str, torch.Tensor]:
    """Layer-wise full-graph inference: ``{type: [n_type, hidden]}`` float32 on CPU,
    L2-normalized; equal to ``model(h0, all edge_index)`` on the whole graph. On several
    ranks (``world``) each computes its share of every chunked step and all end with the
    whole result, bit-identical to one process (the CPU max-pool reduction, exact and
    memory-bound, runs whole on every rank).

    Layer ``i`` is computed for all nodes before layer ``i + 1``, one relation at a time,
    and the relation outputs are summed into one buffer per destination type. For the
    paper's max-pool relation, ``relu(W_r h_u + b_r)`` is computed once per source node
    (``[n_src, hidden]``) and, on CPU, max-reduced over each destination's in-neighbours
    with the edges in cache-blocked order (:class:`BlockedCSC`, built once per relation);
    on other devices and for other convs destinations are processed in chunks of
    ``chunk_size`` with all their in-neighbours (CSC per edge type). Memory is O(one
    relation table + the blocked edge lists, or chunk in-edges x hidden) besides the
    ``[N, hidden]`` states (kept on CPU; each chunk runs on ``device``, where the model is
    moved). ``symmetric=True`` promises that every edge type's reverse holds the
    transposed edges (true for graphs from ``build-graph``).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    model = model.to(device).eval()
    on_cpu = torch.device(device).type == "cpu"
    h: dict[str, torch.Tensor] = {}
    for t in model.node_types:
        n, x, has_text = data[t].num_nodes, data[t].get("x"), data[t].get("has_text")

        def encode(lo: int, hi: int, t=t, x=x, has_text=has_text) -> torch.Tensor:
            xc = None if x is None else x[lo:hi].to(device)
            hc = None if has_text is None else has_text[lo:hi].to(device)
            return model.encode_input(t, torch.arange(lo, hi, device=device), xc, hc).float()

        h[t] = _shared(torch.empty(n, model.embed[t].embedding_dim), chunk_size, encode, world)
    adj = {et: _csc(data, et, symmetric) for et in data.edge_types if et[0] in h and et[2] in h}
    blocked: dict[EdgeType, BlockedCSC] = {}
    for i, hetero in enumerate(model.convs):
        agg: dict[str, torch.Tensor] = {}  # sum over relations, per destination type
        for et, conv in hetero.convs.items():
            if et not in adj:
                continue
            s, d, a = et[0], et[2], adj[et]
            table = None
            if isinstance(conv, MaxPoolRelation):
                table = _relu_table(conv.lin, h[s], chunk_size, device, world)
            if table is not None and on_cpu:
                if et not in blocked:  # cache-blocked edge order, built once for all layers
                    blocked[et] = BlockedCSC(a.colptr, a.row, a.num_src, block_rows(table.shape[1]))
                out = blocked[et].max(table)
            else:

                def relation(lo: int, hi: int, conv=conv, table=table, s=s, d=d, a=a, h=h) -> Any:
                    return _relation_chunk(conv, table, h[s], a, lo, hi, h[d][lo:hi].to(device))

                out = torch.empty(h[d].shape[0], _out_dim(model, i, d))
                out = _shared(out, chunk_size, relation, world)
            del table
            agg[d] = out if d not in agg else agg[d].add_(out)
        new = {}
        for d, hd in h.items():

            def update(lo: int, hi: int, i=i, d=d, hd=hd, agg=agg) -> torch.Tensor:
                z = model.self_lin[i][d](hd[lo:hi].to(device))
                if d in agg:
                    z += agg[d][lo:hi].to(device)
                return F.relu_(z) if i < len(model.convs) - 1 else z

            new[d] = _shared(
                torch.empty(hd.shape[0], _out_dim(model, i, d)), chunk_size, update, world
            )
        h = new
    return {t: F.normalize(v, dim=-1) for t, v in h.items()}


def _out_dim(model: HeteroSAGE, i: int, t: str) -> int:
    """Output size of layer ``i`` for node type ``t``."""
    return model.self_lin[i][t].out_features


@torch.inference_mode()
def isolated_embeddings(
    model: HeteroSAGE, node_type: str, x: torch.Tensor, chunk_size: int = 65536, device: str = "cpu"
) -> torch.Tensor:
    """Embeddings ``[N, hidden]`` (CPU, L2-normalized) of new nodes of ``node_type`` from their
    text features ``x`` ``[N, feature_dim]`` and no neighbours: ``h0 = model.text[type](x)``,
    then every layer with each relation run on zero edges (0 for max/mean pooling; whatever
    the conv gives an isolated node otherwise, e.g. GATv2's bias) — as the full model would."""
    if model.text is None:
        raise ContractError("the run's model has no text input (feature_dim 0)")
    model = model.to(device).eval()
    empty = torch.zeros(0, dtype=torch.long)
    parts = []
    for lo in range(0, x.shape[0], chunk_size):
        h = model.text[node_type](x[lo : lo + chunk_size].to(device))
        for i, hetero in enumerate(model.convs):
            msgs = [
                _messages(conv, h, empty, empty, h)
                for et, conv in hetero.convs.items()
                if et[2] == node_type
            ]
            h = _update(model, i, node_type, h, msgs)
        parts.append(F.normalize(h, dim=-1).float().cpu())
    dim = model.self_lin[-1][node_type].out_features
    return torch.cat(parts) if parts else torch.zeros(0, dim)
