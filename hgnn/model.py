"""Heterogeneous GraphSAGE of the 2T-HGNN paper (per-relation max-pool, L2-normalized).

Per layer and node type ``d``::

    AGG_r(v) = max_{u in N_r(v)} relu(W_r h_u + b_r)           for each relation r = (s, co, d)
    h'_v     = relu(W_self,d h_v + sum_r AGG_r(v))               (no relu after the last layer)

and the output is L2-normalized. Input per node: ``Linear(x)`` of its text features, or a
learned per-node embedding for featureless nodes (``has_text = False``), so graphs that mix
text and featureless types (or nodes) work. Other PyG convolutions can be swapped in via
``conv="sage-mean"`` (``SAGEConv`` mean) or ``conv="gatv2"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import GATv2Conv, HeteroConv, MessagePassing, SAGEConv

from audiograph.core.pyg_templates import pyg_templates_discarded
from audiograph.core.types import EdgeType
from audiograph.hgnn.maxpool_train import max_pool
from audiograph.hgnn.row_adam import RowAdam


class MaxPoolRelation(MessagePassing):
    """``AGG_r``: max over neighbours of ``relu(W_r h_u + b_r)`` (0 for no neighbours).

    Shapes: ``x`` = (``[N_src, in]``, ``[N_dst, *]``), ``edge_index`` ``[2, E]`` → ``[N_dst, out]``.

    ``fused=True`` (default) aggregates with :func:`audiograph.hgnn.maxpool_train.max_pool` (no
    ``[E, out]`` message tensor on CPU); ``fused=False`` runs PyG's ``MessagePassing``
    with ``aggr="max"`` — the reference it is tested and benchmarked against.
    """

    def __init__(self, in_channels: int, out_channels: int, fused: bool = True) -> None:
        with pyg_templates_discarded():
            super().__init__(aggr="max")
        self.lin = nn.Linear(in_channels, out_channels)
        self.fused = fused

    def forward(
        self, x: torch.Tensor | tuple[torch.Tensor, torch.Tensor], edge_index: torch.Tensor
    ) -> torch.Tensor:
        if isinstance(x, torch.Tensor):  # HeteroConv passes one tensor when src == dst type
            x = (x, x)
        if self.fused:
            return self._fused(x[0], edge_index, x[1].size(0))
        src = F.relu(self.lin(x[0]))
        return self.propagate(edge_index, x=(src, None), size=(x[0].size(0), x[1].size(0)))

    def _fused(self, x_src: torch.Tensor, edge_index: torch.Tensor, num_dst: int) -> torch.Tensor:
        """The projection once per source node that has an edge here: in a sampled
        subgraph most nodes are the sources of one relation only, so the others'
        ``relu(W_r h + b_r)`` (and its gradient) are skipped when that saves a quarter."""
        src = edge_index[0]
        if src.numel() and x_src.device.type == "cpu":
            used, inverse = torch.unique(src, return_inverse=True)
            if used.numel() < 0.75 * x_src.size(0):
                table = F.relu(self.lin(x_src.index_select(0, used))).float()
                return max_pool(table, inverse, edge_index[1], num_dst)
        return max_pool(F.relu(self.lin(x_src)).float(), src, edge_index[1], num_dst)

    def message(self, x_j: torch.Tensor) -> torch.Tensor:
        return x_j


def _relation(conv: str, dim: int) -> nn.Module:
    if conv in ("maxpool", "maxpool-pyg"):
        return MaxPoolRelation(dim, dim, fused=conv == "maxpool")
    if conv in ("sage-mean", "gatv2"):
        with pyg_templates_discarded():
            if conv == "sage-mean":
                return SAGEConv((dim, dim), dim, aggr="mean", root_weight=False)
            return GATv2Conv((dim, dim), dim, add_self_loops=False)
    raise ValueError(f"unknown conv {conv!r} (maxpool | maxpool-pyg | sage-mean | gatv2)")


SAVED_BEFORE: dict[str, Any] = {"num_layers": 2, "conv": "maxpool"}
"""What runs saved before ``num_layers`` and ``conv`` were recorded trained with."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that builds a :class:`HeteroSAGE`: saved with its run as
    ``config["model"]`` (:meth:`saved`) and read back by :meth:`from_saved`, so a run is
    rebuilt from what it recorded, never from a default. ``hidden``, ``num_layers`` and
    ``conv`` come from :class:`~audiograph.hgnn.config.HGNNConfig`, their one default."""

    node_types: list[str]
    edge_types: list[EdgeType]
    num_nodes: dict[str, int]
    feature_dim: int
    hidden: int
    num_layers: int
    conv: str

    @classmethod
    def of_graph(
        cls, data: HeteroData, feature_dim: int, hidden: int, num_layers: int, conv: str
    ) -> ModelSpec:
        """The spec of a model for the graph ``data`` (its types and node counts)."""
        num_nodes = {t: int(data[t].num_nodes) for t in data.node_types}
        return cls(
            list(data.node_types),
            list(data.edge_types),
            num_nodes,
            feature_dim,
            hidden,
            num_layers,
            conv,
        )

    @classmethod
    def from_saved(cls, m: dict[str, Any]) -> ModelSpec:
        """The spec a run recorded (``config["model"]``)."""
        keys = ("node_types", "num_nodes", "feature_dim", "hidden", "num_layers", "conv")
        values = {k: m.get(k, SAVED_BEFORE.get(k)) for k in keys}
        return cls(edge_types=[tuple(e) for e in m["edge_types"]], **values)

    def saved(self) -> dict[str, Any]:
        """The JSON form written to ``config["model"]``."""
        out = asdict(self)
        out["edge_types"] = [list(e) for e in self.edge_types]
        return out

    def build(self) -> HeteroSAGE:
        """A fresh model of this spec (the caller seeds it)."""
        return HeteroSAGE(
            self.node_types,
            self.edge_types,
            self.num_nodes,
            self.feature_dim,
            self.hidden,
            self.num_layers,
            self.conv,
        )


class HeteroSAGE(nn.Module):
    """The HGNN (build it from a :class:`ModelSpec`; the constructor has no defaults).

    Args:
        node_types: node types of the graph.
        edge_types: edge types ``(s, "co", d)``.
        num_nodes: nodes per type (sizes the learned embeddings of featureless nodes).
        feature_dim: text feature size (0 = no text features at all).
        hidden: hidden and output size.
        num_layers: message-passing layers.
        conv: ``"maxpool"`` (paper; fused aggregation), ``"maxpool-pyg"`` (the same layer
            through PyG's ``MessagePassing``; same weights, same outputs), ``"sage-mean"``
            or ``"gatv2"``.
    """

    def __init__(
        self,
        node_types: list[str],
        edge_types: list[EdgeType],
        num_nodes: dict[str, int],
        feature_dim: int,
        hidden: int,
        num_layers: int,
        conv: str,
    ) -> None:
        super().__init__()
        self.node_types, self.edge_types = list(node_types), list(edge_types)
        self.text = (
            nn.ModuleDict({t: nn.Linear(feature_dim, hidden) for t in node_types})
            if feature_dim > 0
            else None
        )
        # sparse gradients: a batch touches few rows of a (possibly 1M-row) table, and
        # SparseAdam updates only those rows (see ``optimizers``)
        self.embed = nn.ModuleDict(
            {t: nn.Embedding(num_nodes[t], hidden, sparse=True) for t in node_types}
        )
        for emb in self.embed.values():
            nn.init.normal_(emb.weight, std=0.1)
        self.convs = nn.ModuleList(
            HeteroConv({et: _relation(conv, hidden) for et in edge_types}, aggr="sum")
            for _ in range(num_layers)
        )
        self.self_lin = nn.ModuleList(
            nn.ModuleDict({t: nn.Linear(hidden, hidden) for t in node_types})
            for _ in range(num_layers)
        )

    def encode_input(
        self, t: str, n_id: torch.Tensor, x: torch.Tensor | None, has_text: torch.Tensor | None
    ) -> torch.Tensor:
        """Layer-0 representation ``[N, hidden]`` of nodes ``n_id`` of type ``t``: the text
        projection where ``has_text``, else the node's learned embedding. Only the
        featureless nodes' rows are looked up, so the embeddings' sparse gradients (and
        SparseAdam's step) cover those rows alone."""
        if self.text is None or x is None or has_text is None:
            return self.embed[t](n_id)
        h = self.text[t](x)
        if bool(has_text.all()):
            return h
        rows = (~has_text).nonzero().squeeze(1)
        return h.index_put((rows,), self.embed[t](n_id[rows]).to(h.dtype))

    def layer(
        self,
        i: int,
        h: dict[str, torch.Tensor],
        edge_index: dict[EdgeType, torch.Tensor],
        num_dst: dict[str, int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Apply layer ``i`` (``h``: ``{type: [N_t, hidden]}``, every node a possible source).

        ``num_dst``: only the first ``num_dst[t]`` nodes of each type are destinations (the
        others are reached only as sources; every edge's destination is among them), so
        the output is ``{type: [num_dst[t], hidden]}`` and no work is spent on the rest.
        """
        n = num_dst or {t: v.shape[0] for t, v in h.items()}
        relations = self.convs[i].convs
        agg: dict[str, torch.Tensor] = {}
        for et, e in edge_index.items():
            s, _, d = et
            if s in h and d in h:  # HeteroConv's sum over relations, on the destinations
                m = relations[et]((h[s], h[d][: n[d]]), e)
                agg[d] = m if d not in agg else agg[d] + m
        out = {}
        for t, ht in h.items():
            z = self.self_lin[i][t](ht[: n[t]])
            if t in agg:
                z = z + agg[t]
            out[t] = F.relu(z) if i < len(self.convs) - 1 else z
        return out

    def forward(
        self,
        h0: dict[str, torch.Tensor],
        edge_index: dict[EdgeType, torch.Tensor],
        num_sampled_nodes: dict[str, list[int]] | None = None,
        num_sampled_edges: dict[EdgeType, list[int]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """All layers → L2-normalized ``{type: [N_t, hidden]}``.

        With the per-hop counts of a sampled subgraph (``samplers.NeighborSampler``
        output), layer ``i`` only processes the nodes and edges that can still reach the
        seeds (PyG's ``trim_to_layer``); the output then covers the first
        ``num_sampled_nodes[t][0]`` nodes of each type — the seeds — which are exact.
        """
        h, layers = h0, len(self.convs)
        trim = num_sampled_nodes is not None and num_sampled_edges is not None
        for i in range(layers):
            num_dst = None
            if trim:
                keep = layers - i  # hops still needed: sources up to hop keep
                h = {t: v[: sum(num_sampled_nodes[t][: keep + 1])] for t, v in h.items()}
                edge_index = {
                    et: e[:, : sum(num_sampled_edges[et][:keep])] for et, e in edge_index.items()
                }
                num_dst = {t: sum(num_sampled_nodes[t][:keep]) for t in h}
            h = self.layer(i, h, edge_index, num_dst)
        if num_sampled_nodes is not None:
            h = {t: v[: num_sampled_nodes[t][0]] for t, v in h.items()}
        return {t: F.normalize(v.float(), dim=-1) for t, v in h.items()}


def dense_and_sparse(model: HeteroSAGE) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(dense weights, per-node embedding tables)``: the latter have sparse gradients."""
    named = list(model.named_parameters())
    return (
        [p for n, p in named if not n.startswith("embed.")],
        [p for n, p in named if n.startswith("embed.")],
    )


def optimizers(model: HeteroSAGE, lr: float) -> list[torch.optim.Optimizer]:
    """``[Adam over the dense weights, SparseAdam over the per-node embeddings]``: a step
    costs O(rows in the batch), not O(all nodes), for the learned embeddings (SparseAdam's
    update fused over the rows on CPU: :class:`~audiograph.hgnn.row_adam.RowAdam`)."""
    dense, sparse = dense_and_sparse(model)
    return [torch.optim.Adam(dense, lr=lr), RowAdam(sparse, lr=lr)]


def embed_batch(
    model: HeteroSAGE,
    batch: HeteroData,
    has_text: dict[str, torch.Tensor],
    precision: str = "fp32",
) -> dict[str, torch.Tensor]:
    """Model output for the seeds of a sampled batch (``{type: [seeds_t, hidden]}``,
    float32), with layers trimmed to the hops that reach the seeds. A batch without
    per-hop counts (PyG's loaders on torch-sparse) runs untrimmed: ``{type: [N_t,
    hidden]}``, every sampled node.

    ``precision="bf16"``: the matrix products run in bfloat16 under ``torch.autocast``
    (weights, max-pool and the L2 output stay float32)."""
    device = next(model.parameters()).device.type
    with torch.autocast(device, torch.bfloat16, enabled=precision == "bf16"):
        return _embed_batch(model, batch, has_text)


def _embed_batch(
    model: HeteroSAGE, batch: HeteroData, has_text: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    h0 = {
        t: model.encode_input(t, batch[t].n_id, batch[t].get("x"), has_text[t][batch[t].n_id])
        for t in batch.node_types
    }
    edges = {et: batch[et].edge_index for et in batch.edge_types}
    if not all("num_sampled_nodes" in batch[t] for t in batch.node_types):
        return model(h0, edges)
    return model(
        h0,
        edges,
        {t: batch[t].num_sampled_nodes for t in batch.node_types},
        {et: batch[et].num_sampled_edges for et in batch.edge_types},
    )
