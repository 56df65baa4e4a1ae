"""Item embeddings from a trained HGNN run, and exact nearest neighbours.

``RUN_DIR`` (written by the trainer): ``config.json`` (``{"kind": "hgnn-run", "graph_dir",
"model": <HeteroSAGE kwargs>, "encoder": {"path", "max_length"} | null, ...}``) and
``model.safetensors`` (``model.state_dict()``).

``EMB_DIR`` (written atomically by :func:`export_embeddings`):

* ``embeddings.npy`` — float32 ``[N, dim]``, rows L2-normalized;
* ``ids.parquet`` — ``item_id``, ``item_type``, ``row`` (row of ``embeddings.npy``);
* ``embeddings.parquet`` — ``item_id``, ``item_type``, ``in_graph``, ``vector`` (f32 array);
* ``manifest.json`` — ``kind="embeddings"``, counts, the run's model config, sources.

Rows: graph nodes in ``nodes.parquet`` order, then inductive catalog items in catalog order.
Graph nodes get deterministic layer-wise full-graph inference (every neighbour, no sampling).
Catalog items not in the graph are embedded inductively from their text alone: exactly what
the model computes for a node with that text and no neighbours. From 100k rows on, a faiss
IVF index (``index.faiss``, see :mod:`audiograph.core.ann`) is written too and
:func:`audiograph.hgnn.neighbors.nearest_neighbors` uses it; smaller exports are searched exactly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import HeteroData

from audiograph.core.atomic import atomic_dir, claim_output
from audiograph.core.config import configure
from audiograph.core.embeddings import write_embeddings
from audiograph.core.errors import (
    ContractError,
    contract_error,
)
from audiograph.core.featurize import TextEncoder, featurize_texts, item_texts
from audiograph.core.progress import step
from audiograph.core.runs import WEIGHTS, load_state, load_weights, read_run_config
from audiograph.core.types import EdgeType
from audiograph.graphs.contract import read_items
from audiograph.graphs.store import load_graph, load_node_ids, read_manifest
from audiograph.hgnn.config import ExportConfig
from audiograph.hgnn.model import HeteroSAGE, MaxPoolRelation
from audiograph.hgnn.segment_max import BlockedCSC, block_rows, segment_max
from audiograph.samplers.adjacency import Adjacency

STAGE = "export"
EMBEDDINGS = "embeddings"


def load_model(run_dir: str | Path, device: str = "cpu") -> tuple[HeteroSAGE, dict[str, Any]]:
    """Rebuild the run's :class:`HeteroSAGE` from ``config["model"]``, load its weights and
    return ``(model in eval mode on device, config)``."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, "hgnn-run")
    if not (run_dir / WEIGHTS).exists():
        raise ContractError(f"{run_dir}: the run has no {WEIGHTS} yet (train at least one epoch)")
    m = config["model"]
    keys = ("node_types", "num_nodes", "feature_dim", "hidden", "num_layers", "conv")
    ets = [tuple(et) for et in m["edge_types"]]
    with torch.device("meta"):  # no random init of (possibly 1M-row) tables to overwrite
        model = HeteroSAGE(edge_types=ets, **{k: m[k] for k in keys if k in m})
    load_state(model, load_weights(run_dir / WEIGHTS), run_dir / WEIGHTS, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ContractError(f"{run_dir / WEIGHTS}: weights do not cover the model")
    return model.to(device).eval(), config


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
    ``relu(W_r h_src + b_r)`` (:func:`audiograph.hgnn.segment_max.segment_max`); other convs run
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


def _relu_table(lin: nn.Linear, h_src: torch.Tensor, chunk_size: int, device: str) -> torch.Tensor:
    """``relu(W_r h_u + b_r)`` for every source node: ``[n_src, out]`` float32 on CPU."""
    table = torch.empty(h_src.shape[0], lin.out_features)
    for lo, hi in _chunks(h_src.shape[0], chunk_size):
        table[lo:hi] = F.relu_(lin(h_src[lo:hi].to(device)))
    return table


@torch.inference_mode()
def full_graph_embeddings(
    model: HeteroSAGE,
    data: HeteroData,
    chunk_size: int = 65536,
    device: str = "cpu",
    symmetric: bool = False,
) -> dict[str, torch.Tensor]:
    """Layer-wise full-graph inference: ``{type: [n_type, hidden]}`` float32 on CPU,
    L2-normalized; equal to ``model(h0, all edge_index)`` on the whole graph.

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
        parts = []
        for lo, hi in _chunks(n, chunk_size):
            xc = None if x is None else x[lo:hi].to(device)
            hc = None if has_text is None else has_text[lo:hi].to(device)
            ids = torch.arange(lo, hi, device=device)
            parts.append(model.encode_input(t, ids, xc, hc).float().cpu())
        h[t] = torch.cat(parts) if parts else torch.zeros(0, model.embed[t].embedding_dim)
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
                table = _relu_table(conv.lin, h[s], chunk_size, device)
            if table is not None and on_cpu:
                if et not in blocked:  # cache-blocked edge order, built once for all layers
                    blocked[et] = BlockedCSC(a.colptr, a.row, a.num_src, block_rows(table.shape[1]))
                out = blocked[et].max(table)
            else:
                out = torch.empty(h[d].shape[0], _out_dim(model, i, d))
                for lo, hi in _chunks(h[d].shape[0], chunk_size):
                    h_dst = h[d][lo:hi].to(device)
                    out[lo:hi] = _relation_chunk(conv, table, h[s], a, lo, hi, h_dst).cpu()
            del table
            agg[d] = out if d not in agg else agg[d].add_(out)
        new = {}
        for d, hd in h.items():
            out = torch.empty(hd.shape[0], _out_dim(model, i, d))
            for lo, hi in _chunks(hd.shape[0], chunk_size):
                z = model.self_lin[i][d](hd[lo:hi].to(device))
                if d in agg:
                    z += agg[d][lo:hi].to(device)
                out[lo:hi] = F.relu_(z) if i < len(model.convs) - 1 else z
            new[d] = out
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


def _encoder(config: dict[str, Any], device: str) -> TextEncoder:
    """The run's text encoder (``config["encoder"]``, else the graph's, else the default)."""
    enc = config.get("encoder")
    if enc is None:
        g = read_manifest(config["graph_dir"])
        enc = {**(g.get("encoder") or {}), "max_length": g.get("config", {}).get("max_length")}
    return TextEncoder(enc.get("path"), device=device, max_length=enc.get("max_length") or 128)


def _inductive(
    model: HeteroSAGE,
    config: dict[str, Any],
    catalog: str | Path,
    known: pl.Series,
    chunk_size: int,
    device: str,
    cache_dir: str | Path | None,
    quiet: bool,
) -> tuple[pl.DataFrame, torch.Tensor, int]:
    """Catalog items not in ``known`` with text → ``(items, vectors [n, hidden], skipped)``."""
    items = read_items(catalog).filter(~pl.col("item_id").is_in(known.implode()))
    bad = items.filter(~pl.col("item_type").is_in(model.node_types))
    if bad.height:
        raise contract_error(
            str(catalog),
            "item_type",
            f"item type not in the run's model {model.node_types}",
            bad.select("item_id", "item_type", "title").row(0, named=True),
        )
    texts = item_texts(items)
    keep = pl.Series([bool(x.strip()) for x in texts], dtype=pl.Boolean)
    items, texts = items.filter(keep), [x for x in texts if x.strip()]
    new = torch.zeros(items.height, model.self_lin[-1][model.node_types[0]].out_features)
    if items.height == 0:
        return items, new, int((~keep).sum())
    if model.text is None:
        raise ContractError(
            f"{catalog}: {items.height} items are not in the graph and the run's model has"
            " no text input (graph built with --encoder none)"
        )
    enc = _encoder(config, device)
    if enc.dim != model.text[model.node_types[0]].in_features:
        raise ContractError(f"encoder {enc.path}: dim {enc.dim} != the model's feature dim")
    x = torch.from_numpy(featurize_texts(texts, enc, cache_dir, progress=not quiet)[0])
    for t in items["item_type"].unique(maintain_order=True).to_list():
        rows = torch.tensor((items["item_type"] == t).to_numpy())
        new[rows] = isolated_embeddings(model, t, x[rows], chunk_size, device)
    return items, new, int((~keep).sum())


def export_embeddings(
    run_dir: str | Path,
    out_dir: str | Path,
    catalog: str | Path | None = None,
    cfg: ExportConfig | None = None,
    *,
    graph: str | Path | None = None,
    quiet: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Embed every graph node of the run (and every text item of ``catalog`` not in the
    graph, inductively) into ``out_dir`` (layout in the module docstring). ``cfg``: the
    :class:`ExportConfig` (keyword ``options`` override its fields). ``graph``: another
    graph directory over the same nodes (e.g. built on all of a split's train part at
    serving time, with the weights trained on its fit window); default: the run's.

    Catalog items not in the graph with empty text are skipped (``skipped_no_text``); such
    items of a type the model lacks raise ContractError. Returns the manifest.
    """
    cfg = configure(ExportConfig, cfg, options, "export")
    chunk_size, device, cache_dir, index = cfg.chunk_size, cfg.device, cfg.cache_dir, cfg.index
    t0 = time.perf_counter()
    claim_output(out_dir, EMBEDDINGS, [run_dir, catalog])
    model, config = load_model(run_dir, device)
    graph_dir = graph or config["graph_dir"]  # another graph over the same nodes: allowed
    claim_output(out_dir, EMBEDDINGS, [run_dir, catalog, graph_dir])
    with step(STAGE, "full-graph inference", quiet) as s:
        data, nodes = load_graph(graph_dir), load_node_ids(graph_dir)
        want = {t: model.embed[t].num_embeddings for t in model.node_types}
        have = {t: int(data[t].num_nodes) for t in data.node_types}
        if want != have:
            raise ContractError(
                f"{graph_dir}: graph does not match the run's model (nodes per type {have},"
                f" model {want}); export with the graph the run was trained on"
            )
        emb = full_graph_embeddings(model, data, chunk_size, device, symmetric=True)
        dim = next(iter(emb.values())).shape[1]
        vectors = torch.zeros(nodes.height, dim)
        for t, v in emb.items():
            mask = torch.tensor((nodes["item_type"] == t).to_numpy())
            vectors[mask] = v[torch.tensor(nodes["node_index"].to_numpy())[mask]]
        s["rows"] = nodes.height
    frames = [nodes.select("item_id", "item_type", in_graph=pl.lit(True))]
    mats, skipped = [vectors], 0
    if catalog is not None:
        with step(STAGE, "inductive items", quiet) as s:
            items, new, skipped = _inductive(
                model, config, catalog, nodes["item_id"], chunk_size, device, cache_dir, quiet
            )
            frames.append(items.select("item_id", "item_type", in_graph=pl.lit(False)))
            mats.append(new)
            s["rows"], s["note"] = items.height, f"skipped {skipped} without text"
    ids = pl.concat(frames)
    mat = torch.cat(mats).numpy().astype(np.float32, copy=False)
    g = read_manifest(graph_dir)
    manifest = {
        "in_graph": nodes.height, "inductive": ids.height - nodes.height,
        "skipped_no_text": skipped, "normalized": True,
        "run_dir": str(Path(run_dir).absolute()), "graph_dir": str(Path(graph_dir).absolute()),
        "dataset": g.get("dataset"),
        "catalog": None if catalog is None else str(Path(catalog).absolute()),
        "model": config["model"], "encoder": config.get("encoder"),
    }  # fmt: skip
    inputs = [run_dir, catalog, graph_dir]
    with atomic_dir(out_dir, EMBEDDINGS, inputs) as tmp, step(STAGE, "write", quiet) as s:
        manifest = write_embeddings(tmp, ids, mat, manifest, index, with_table=True, started=t0)
        s["note"] = manifest["ann"]["index"]
    return manifest
