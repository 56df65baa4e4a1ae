"""``build-graph``: dataset directory → heterogeneous co-interaction graph directory.

Nodes are the catalog's items (every item, with or without interactions), one node
type per ``item_type``. For every ordered pair of item types ``(s, d)`` there is an
edge type ``(s, "co", d)``; ``(s, "co", d)`` is the exact reverse of ``(d, "co", s)``
(PyG convention), so each co-interaction appears once in each direction. Edge weight
= number of distinct users who consumed both items (no normalization).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch_geometric.data import HeteroData

from audiograph.core.atomic import MANIFEST, atomic_dir, claim_output, write_json
from audiograph.core.config import configure
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION
from audiograph.core.progress import step
from audiograph.core.text_encoder import TextEncoder, featurize_texts, item_texts
from audiograph.graphs.coint import co_interaction_edges, user_items
from audiograph.graphs.config import GraphConfig
from audiograph.graphs.contract import Dataset, check_signals, read_dataset
from audiograph.graphs.store import edge_key, save_graph_tensors, write_edge_shards

STAGE = "build-graph"
STAGE_KIND = "graph"


def build_graph(
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: GraphConfig | None = None,
    *,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Build the co-interaction graph of ``data_dir`` into ``out_dir`` (atomically);
    ``options`` (e.g. ``top_k=30``) override fields of ``cfg``.

    Returns the manifest written to ``out_dir/manifest.json``.
    """
    cfg = configure(GraphConfig, cfg, options, "build-graph")
    claim_output(out_dir, STAGE_KIND, [data_dir])
    t0 = time.perf_counter()
    with step(STAGE, "read dataset", quiet) as s:
        if cfg.engine == "spark":  # only the catalog on the driver; Spark reads the rest
            from audiograph.graphs.spark import read_items_any

            ds = Dataset(items=read_items_any(data_dir, cfg.master), path=data_dir)
        else:
            ds = read_dataset(data_dir, drop_unknown=cfg.drop_unknown)
            if ds.interactions is not None:
                present = ds.interactions["signal"].unique().sort().to_list()
                check_signals(present, cfg.signals, ds.files["interactions"])
        s["rows"] = 0 if ds.interactions is None else ds.interactions.height
    types = ds.item_types
    items = ds.items.with_columns(
        type_code=pl.col("item_type").replace_strict(
            types, list(range(len(types))), return_dtype=pl.UInt16
        ),
        node_index=pl.int_range(pl.len(), dtype=pl.Int64).over("item_type"),
    )
    # Spark's directed edge parts (engine spark with edge shards) wait here for the write
    parts_dir = None
    if cfg.engine == "spark":
        parts_dir = Path(tempfile.mkdtemp(prefix=".spark-", dir=Path(out_dir).absolute().parent))
    try:
        with step(STAGE, f"co-interaction edges ({cfg.engine})", quiet) as s:
            if cfg.engine == "spark":
                from audiograph.graphs.spark import spark_pairs

                sharded = cfg.edge_shard_rows is not None
                pairs, inputs = spark_pairs(data_dir, items, cfg, parts_dir, sharded)
            else:
                pairs = _pairs(ds, items, cfg, quiet)
                n = 0 if ds.interactions is None else ds.interactions.height
                inputs = {
                    "pairs": pairs.height,
                    "dropped_unknown": ds.dropped_unknown,
                    "interactions": n,
                }
            s["rows"] = inputs.pop("pairs")
        t_pairs = time.perf_counter()
        with step(STAGE, "features", quiet) as s:
            x, has_text, enc_info = _features(ds, cfg, quiet)
            s["note"] = (
                f"{enc_info['id']}: encoded {enc_info['encoded']:,}, cached "
                f"{enc_info['cached']:,}, empty {enc_info['empty']:,}"
                if enc_info
                else "no encoder (--encoder none)"
            )
        data = _node_data(items, types, x, has_text)
        with step(STAGE, "write", quiet), atomic_dir(out_dir, STAGE_KIND, [data_dir]) as tmp:
            nodes = items.select("item_id", "item_type", "node_index")
            parts = (
                [_directed(items, types, pairs)]
                if pairs is not None
                else (pl.read_parquet(f) for f in sorted(parts_dir.glob("edges/*.parquet")))
            )
            shards: list[str] = []
            if cfg.edge_shard_rows is None:
                _add_edges(data, types, next(iter(parts)))
                counts = {edge_key(et): int(data[et].edge_index.shape[1]) for et in data.edge_types}
            else:
                counts, shards = write_edge_shards(tmp, types, parts, cfg.edge_shard_rows)
            save_graph_tensors(tmp, data, nodes)
            manifest = _manifest(data, ds, cfg, enc_info, x.shape[1], inputs, counts)
            if cfg.edge_shard_rows is not None:
                manifest["edge_shards"] = shards
            manifest["build_seconds"] = {
                "features": round(enc_info.get("seconds", 0.0), 3) if enc_info else 0.0,
                "total": round(time.perf_counter() - t0, 3),
                "edges": round(t_pairs - t0, 3),
            }
            write_json(tmp / MANIFEST, manifest)
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
    if not quiet:
        e = sum(manifest["edge_types"].values())
        print(
            f"[{STAGE}] done: {manifest['num_nodes']:,} nodes in {len(types)} types, "
            f"{e:,} directed edges in {len(manifest['edge_types'])} edge types, "
            f"feature dim {manifest['feature_dim']} -> {out_dir} "
            f"({manifest['build_seconds']['total']:.1f}s)"
        )
    return manifest


def _features(ds: Dataset, cfg: GraphConfig, quiet: bool):
    n = ds.items.height
    if cfg.encoder == "none":
        return np.zeros((n, 0), np.float32), np.zeros(n, dtype=bool), {}
    t = time.perf_counter()
    texts = item_texts(ds.items)
    enc = TextEncoder(
        None if cfg.encoder == "default" else cfg.encoder,
        device=cfg.device,
        max_length=cfg.max_length,
    )
    x, has_text, stats = featurize_texts(texts, enc, cfg.cache_dir, cfg.batch_size, not quiet)
    return (
        x,
        has_text,
        {
            "path": str(enc.path),
            "id": enc.id,
            "dim": enc.dim,
            **stats,
            "seconds": time.perf_counter() - t,
        },
    )


def _pairs(ds: Dataset, items: pl.DataFrame, cfg: GraphConfig, quiet: bool) -> pl.DataFrame:
    """Undirected pairs ``a < b`` (global item rows) with ``n_users``."""
    if ds.interactions is None:
        return pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32, "n_users": pl.UInt32})
    inter = ds.interactions.lazy().select("user_id", "item_id", "weight", "ts", "signal")
    if cfg.signals is not None:
        inter = inter.filter(pl.col("signal").is_in(cfg.signals))
    index = items.lazy().select("item_id", item=pl.int_range(pl.len(), dtype=pl.UInt32))
    lf = inter.join(index, on="item_id").select(
        user=pl.col("user_id").cast(pl.Categorical).to_physical(),
        item="item",
        weight="weight",
        ts="ts",
    )
    ui = user_items(lf, cfg.user_cap, cfg.cap_by)
    return co_interaction_edges(
        ui, items["type_code"].to_numpy(), cfg.min_users, cfg.top_k, progress=not quiet
    )


def _node_data(
    items: pl.DataFrame, types: list[str], x: np.ndarray, has_text: np.ndarray
) -> HeteroData:
    """The node tensors per type: ``x`` ``[n_t, d]``, ``has_text`` ``[n_t]``."""
    code = items["type_code"].to_numpy()
    data = HeteroData()
    for k, t in enumerate(types):
        rows = np.flatnonzero(code == k)
        data[t].x = torch.from_numpy(np.ascontiguousarray(x[rows]))
        data[t].has_text = torch.from_numpy(has_text[rows])
        data[t].num_nodes = len(rows)
    return data


def _directed(items: pl.DataFrame, types: list[str], pairs: pl.DataFrame) -> pl.DataFrame:
    """Both directions of every pair as ``t`` (edge type ``i * T + j``), ``s``, ``d`` (local
    indices), ``w``, in one parallel sort by ``(t, s, d)``: CSR-friendly, deterministic."""
    code = items["type_code"].to_numpy().astype(np.int64)
    n = len(code)
    if len(types) ** 2 * n * n >= 2**64:
        raise ContractError(f"too many items for one graph ({n:,} items, {len(types)} types)")
    type_of, local_of = pl.lit(pl.Series(code)), pl.lit(pl.Series(items["node_index"]))
    return (
        pl.concat(
            [
                pairs.lazy().select(src="a", dst="b", w="n_users"),
                pairs.lazy().select(src="b", dst="a", w="n_users"),
            ]
        )
        .with_columns(t=type_of.gather("src") * len(types) + type_of.gather("dst"))
        .with_columns(
            key=pl.col("t").cast(pl.UInt64) * (n * n)
            + pl.col("src").cast(pl.UInt64) * n
            + pl.col("dst")
        )
        .sort("key")
        .select(
            "t", s=local_of.gather("src"), d=local_of.gather("dst"), w=pl.col("w").cast(pl.Float32)
        )
        .collect()
    )


def _add_edges(data: HeteroData, types: list[str], directed: pl.DataFrame) -> None:
    """Every type pair's ``edge_index`` ``[2, E]`` and ``edge_weight`` ``[E]`` from
    :func:`_directed`'s frame (possibly empty)."""
    bounds = np.searchsorted(directed["t"].to_numpy(), np.arange(len(types) ** 2 + 1))
    ei_all = np.stack([directed["s"].to_numpy(), directed["d"].to_numpy()]).astype(np.int64)
    w_all = directed["w"].to_numpy(writable=True)  # torch tensors must not be read-only
    for i, s in enumerate(types):
        for j, d in enumerate(types):
            lo, hi = bounds[i * len(types) + j], bounds[i * len(types) + j + 1]
            data[s, "co", d].edge_index = torch.from_numpy(np.ascontiguousarray(ei_all[:, lo:hi]))
            data[s, "co", d].edge_weight = torch.from_numpy(w_all[lo:hi])


def _manifest(
    data: HeteroData,
    ds: Dataset,
    cfg: GraphConfig,
    enc_info: dict,
    dim: int,
    inputs: dict,
    edges: dict[str, int],
) -> dict[str, Any]:
    return {
        "kind": "graph",
        "format_version": FORMAT_VERSION,
        "node_types": {t: int(data[t].num_nodes) for t in data.node_types},
        "edge_types": edges,
        "feature_dim": int(dim),
        "featureless": {t: int((~data[t].has_text).sum()) for t in data.node_types},
        "num_nodes": int(sum(data[t].num_nodes for t in data.node_types)),
        "num_edges": sum(edges.values()),
        "encoder": (
            {k: v for k, v in enc_info.items() if k in ("path", "id", "dim")} if enc_info else None
        ),
        "dataset": None
        if not ds.path
        else str(ds.path)
        if "://" in str(ds.path)
        else str(Path(ds.path).absolute()),
        "config": asdict(cfg),
        "stats": {
            "interactions": inputs["interactions"],
            "dropped_unknown": inputs["dropped_unknown"],
            "text_cache": {k: enc_info[k] for k in ("encoded", "cached", "empty")}
            if enc_info
            else None,
        },
    }
