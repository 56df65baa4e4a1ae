"""The graph directory on disk and its loader.

``GRAPH_DIR`` holds, all readable without audiograph:

* ``graph.safetensors`` — tensors keyed ``x.<type>`` (float32 ``[n_type, d]``; ``d = 0``
  when built without an encoder), ``has_text.<type>`` (bool ``[n_type]``),
  ``edge_index.<src>__co__<dst>`` (int64 ``[2, E]``, local node indices) and
  ``edge_weight.<src>__co__<dst>`` (float32 ``[E]``, number of shared users);
* ``nodes.parquet`` — ``item_id``, ``item_type``, ``node_index`` (index within its type);
* ``manifest.json`` — counts, feature dim, encoder, build config and timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import torch
from safetensors.torch import load_file, save_file
from torch_geometric.data import HeteroData

from audiograph.core.formats import check_kind
from audiograph.core.types import EdgeType

TENSORS = "graph.safetensors"
NODES = "nodes.parquet"


def edge_key(edge_type: EdgeType) -> str:
    """``("music", "co", "book")`` → ``"music__co__book"``."""
    return "__".join(edge_type)


def parse_edge_key(key: str) -> EdgeType:
    """Inverse of :func:`edge_key`."""
    src, rel, dst = key.split("__")
    return src, rel, dst


def save_graph_tensors(folder: Path, data: HeteroData, nodes: pl.DataFrame) -> None:
    """Write ``data`` (x, has_text, edge_index, edge_weight) and the id map into ``folder``."""
    tensors: dict[str, torch.Tensor] = {}
    for t in data.node_types:
        tensors[f"x.{t}"] = data[t].x.contiguous()
        tensors[f"has_text.{t}"] = data[t].has_text.contiguous()
    for et in data.edge_types:
        tensors[f"edge_index.{edge_key(et)}"] = data[et].edge_index.contiguous()
        tensors[f"edge_weight.{edge_key(et)}"] = data[et].edge_weight.contiguous()
    save_file(tensors, str(folder / TENSORS))
    nodes.write_parquet(folder / NODES)


def read_manifest(graph_dir: str | Path) -> dict[str, Any]:
    """The graph's ``manifest.json`` (raises ContractError if it is not a graph dir)."""
    return check_kind(graph_dir, "graph")


def load_graph(graph_dir: str | Path) -> HeteroData:
    """Load ``GRAPH_DIR`` as a :class:`torch_geometric.data.HeteroData`.

    Per node type ``t``: ``data[t].x`` float32 ``[n_t, d]``, ``data[t].has_text`` bool
    ``[n_t]``, ``data[t].num_nodes``. Per edge type ``(s, "co", d)``: ``edge_index`` int64
    ``[2, E]`` (local indices) and ``edge_weight`` float32 ``[E]``. Every node type pair has
    its edge type, possibly with zero edges.
    """
    manifest = read_manifest(graph_dir)
    tensors = load_file(str(Path(graph_dir) / TENSORS))
    data = HeteroData()
    for t, n in manifest["node_types"].items():
        data[t].x = tensors[f"x.{t}"]
        data[t].has_text = tensors[f"has_text.{t}"]
        data[t].num_nodes = n
    for key in manifest["edge_types"]:
        et = parse_edge_key(key)
        data[et].edge_index = tensors[f"edge_index.{key}"]
        data[et].edge_weight = tensors[f"edge_weight.{key}"]
    return data


def load_node_ids(graph_dir: str | Path) -> pl.DataFrame:
    """``item_id``, ``item_type``, ``node_index`` for every node of the graph."""
    read_manifest(graph_dir)
    return pl.read_parquet(Path(graph_dir) / NODES)


def graph_info(graph_dir: str | Path) -> dict[str, Any]:
    """Summary used by ``audiograph info``: ``node_types``, ``edge_types``, ``feature_dim``,
    ``featureless`` (nodes without text per type), ``encoder``, ``config``, ``build_seconds``."""
    m = read_manifest(graph_dir)
    keys = [
        "node_types",
        "edge_types",
        "feature_dim",
        "featureless",
        "num_nodes",
        "num_edges",
        "encoder",
        "dataset",
        "config",
        "build_seconds",
        "stats",
    ]
    return {k: m[k] for k in keys if k in m}
