"""The graph directory on disk and its loader.

``GRAPH_DIR`` holds, all readable without audiograph:

* ``graph.safetensors`` — tensors keyed ``x.<type>`` (float32 ``[n_type, d]``; ``d = 0``
  when built without an encoder), ``has_text.<type>`` (bool ``[n_type]``),
  ``edge_index.<src>__co__<dst>`` (int64 ``[2, E]``, local node indices) and
  ``edge_weight.<src>__co__<dst>`` (float32 ``[E]``, number of shared users);
* ``nodes.parquet`` — ``item_id``, ``item_type``, ``node_index`` (index within its type);
* ``manifest.json`` — counts, feature dim, encoder, build config and timings.

A graph built with ``edge_shard_rows`` keeps only the node tensors in ``graph.safetensors``
and writes the edge lists as ``edges-00000.safetensors``, ``edges-00001.safetensors``, ...
(listed in the manifest's ``edge_shards``): each holds at most that many directed edges,
with the same keys, and an edge type's full list is the concatenation of its slices in
shard order. The writer streams, so no process ever holds all edges at once;
:func:`load_graph` concatenates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file, save_file
from torch_geometric.data import HeteroData

from audiograph.core.formats import check_kind
from audiograph.core.types import EdgeType

TENSORS = "graph.safetensors"
NODES = "nodes.parquet"
EDGE_SHARD = "edges-{:05d}.safetensors"


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
    for et in data.edge_types:  # none when the edges go to edge shards
        tensors[f"edge_index.{edge_key(et)}"] = data[et].edge_index.contiguous()
        tensors[f"edge_weight.{edge_key(et)}"] = data[et].edge_weight.contiguous()
    save_file(tensors, str(folder / TENSORS))
    nodes.write_parquet(folder / NODES)


def write_edge_shards(
    folder: Path, types: list[str], parts: Iterable[pl.DataFrame], rows: int
) -> tuple[dict[str, int], list[str]]:
    """Stream directed edges into ``edges-NNNNN.safetensors`` files of at most ``rows`` edges.

    ``parts`` are frames with columns ``t`` (edge type ``i * len(types) + j`` for
    ``(types[i], "co", types[j])``), ``s``, ``d`` (local indices) and ``w`` (weight), in
    ascending ``(t, s, d)`` order across all parts. Returns the edge count per edge key
    (every type pair, possibly 0) and the shard file names, in order.
    """
    keys = [edge_key((a, "co", b)) for a in types for b in types]
    counts, shards, last = dict.fromkeys(keys, 0), [], (-1, -1, -1)
    for part in parts:
        for lo in range(0, part.height, rows):
            piece = part.slice(lo, rows)
            t, src, dst = (piece[c].to_numpy().astype(np.int64) for c in ("t", "s", "d"))
            if (int(t[0]), int(src[0]), int(dst[0])) <= last:
                raise RuntimeError("edge parts are not in (edge type, src, dst) order")
            last = (int(t[-1]), int(src[-1]), int(dst[-1]))
            w = piece["w"].to_numpy().astype(np.float32)
            bounds = np.searchsorted(t, np.arange(len(keys) + 1))
            tensors: dict[str, torch.Tensor] = {}
            for k in np.flatnonzero(np.diff(bounds)):
                a, b, key = bounds[k], bounds[k + 1], keys[k]
                tensors[f"edge_index.{key}"] = torch.from_numpy(np.stack([src[a:b], dst[a:b]]))
                tensors[f"edge_weight.{key}"] = torch.from_numpy(np.ascontiguousarray(w[a:b]))
                counts[key] += int(b - a)
            shards.append(EDGE_SHARD.format(len(shards)))
            save_file(tensors, str(folder / shards[-1]))
    return counts, shards


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
    slices: dict[str, list[torch.Tensor]] = {}
    for name in manifest.get("edge_shards") or []:
        for key, value in load_file(str(Path(graph_dir) / name)).items():
            slices.setdefault(key, []).append(value)
    for key in manifest["edge_types"]:
        et = parse_edge_key(key)
        for field, empty in (("edge_index", (2, 0)), ("edge_weight", (0,))):
            name = f"{field}.{key}"
            if name in tensors:
                data[et][field] = tensors[name]
            else:
                dtype = torch.int64 if field == "edge_index" else torch.float32
                parts = slices.get(name) or [torch.empty(empty, dtype=dtype)]
                data[et][field] = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
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
