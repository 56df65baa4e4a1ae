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
New items, those with text and no neighbour (graph nodes without an edge, catalog items not
in the graph), are placed from their text alone: by default (``inductive="head"``) where
the text head (:mod:`audiograph.hgnn.text_head`, fitted here on the nodes with text and
neighbours) predicts the graph would put them, so they share the warm items' space; with
``inductive="model"`` exactly what the model computes for a node with that text and no
neighbours (the model never saw such a node in training). From 100k rows on, a faiss
IVF index (``index.faiss``, see :mod:`audiograph.core.ann`) is written too and
:func:`audiograph.hgnn.neighbors.nearest_neighbors` uses it; smaller exports are searched exactly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from audiograph.core.atomic import atomic_dir, claim_output
from audiograph.core.config import configure
from audiograph.core.distributed import finish, init_world
from audiograph.core.embeddings import write_embeddings
from audiograph.core.errors import (
    ContractError,
    contract_error,
)
from audiograph.core.progress import step
from audiograph.core.runs import WEIGHTS, load_state, load_weights, read_run_config
from audiograph.core.text_encoder import TextEncoder, featurize_texts, item_texts
from audiograph.graphs.contract import read_items
from audiograph.graphs.store import load_graph, load_node_ids, read_manifest
from audiograph.hgnn.config import ExportConfig
from audiograph.hgnn.inference import full_graph_embeddings, isolated_embeddings
from audiograph.hgnn.model import HeteroSAGE, ModelSpec
from audiograph.hgnn.text_head import TextHead, fit_text_head

STAGE = "export"
EMBEDDINGS = "embeddings"


def load_model(run_dir: str | Path, device: str = "cpu") -> tuple[HeteroSAGE, dict[str, Any]]:
    """Rebuild the run's :class:`HeteroSAGE` from ``config["model"]``, load its weights and
    return ``(model in eval mode on device, config)``."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, "hgnn-run")
    if not (run_dir / WEIGHTS).exists():
        raise ContractError(f"{run_dir}: the run has no {WEIGHTS} yet (train at least one epoch)")
    spec = ModelSpec.from_saved(config["model"])
    with torch.device("meta"):  # no random init of (possibly 1M-row) tables to overwrite
        model = spec.build()
    load_state(model, load_weights(run_dir / WEIGHTS), run_dir / WEIGHTS, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ContractError(f"{run_dir / WEIGHTS}: weights do not cover the model")
    return model.to(device).eval(), config


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
    head: TextHead | None = None,
) -> tuple[pl.DataFrame, torch.Tensor, int]:
    """Catalog items not in ``known`` with text → ``(items, vectors [n, hidden], skipped)``:
    ``head``'s prediction from their text, else the model run with no neighbours."""
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
        if head is not None:
            new[rows] = head.predict(x[rows], t)
        else:
            new[rows] = isolated_embeddings(model, t, x[rows], chunk_size, device)
    return items, new, int((~keep).sum())


def _degrees(data: Any) -> dict[str, torch.Tensor]:
    """In-degree ``[n_type]`` of every node type over all relations."""
    deg = {t: torch.zeros(int(data[t].num_nodes), dtype=torch.long) for t in data.node_types}
    for (_, _, dst), store in data.edge_items():
        deg[dst] += torch.bincount(store.edge_index[1], minlength=len(deg[dst]))
    return deg


def _text_head(data: Any, emb: dict[str, torch.Tensor]) -> tuple[TextHead | None, int]:
    """``(head, isolated)``: the text head fitted on the graph's nodes that have text and
    neighbours (their text features and full-graph embeddings); the nodes with text and no
    neighbour (a new item: no training user) get its prediction in ``emb`` instead of the
    model's no-neighbour vector, counted in ``isolated``."""
    x, y, lone = {}, {}, {}
    for t, deg in _degrees(data).items():
        has_text = data[t].get("has_text")
        text = torch.ones(len(deg), dtype=torch.bool) if has_text is None else has_text.bool()
        if data[t].get("x") is None:
            continue
        keep, lone[t] = text & (deg > 0), text & (deg == 0)
        if keep.any():
            x[t], y[t] = data[t].x[keep], emb[t][keep]
    head = fit_text_head(x, y) if x else None
    if head is None:
        return None, 0
    for t, mask in lone.items():
        if mask.any() and t in head.types:
            emb[t] = emb[t].clone()  # inference tensors are read-only
            emb[t][mask] = head.predict(data[t].x[mask], t)
    return head, int(sum(int(m.sum()) for t, m in lone.items() if t in head.types))


def export_embeddings(
    run_dir: str | Path,
    out_dir: str | Path,
    catalog: str | Path | None = None,
    cfg: ExportConfig | None = None,
    *,
    graph: str | Path | None = None,
    quiet: bool = False,
    distributed: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Embed every graph node of the run (and every text item of ``catalog`` not in the
    graph, inductively) into ``out_dir`` (layout in the module docstring). ``cfg``: the
    :class:`ExportConfig` (keyword ``options`` override its fields). ``graph``: another
    graph directory over the same nodes (e.g. built on all of a split's train part at
    serving time, with the weights trained on its fit window); default: the run's.

    Catalog items not in the graph with empty text are skipped (``skipped_no_text``); such
    items of a type the model lacks raise ContractError. Returns the manifest.

    ``distributed``: one rank of a ``torchrun`` launch; the ranks share the layer-wise
    inference (:func:`full_graph_embeddings`) and rank 0 writes the same bytes one process
    would (the other ranks return ``{}``).
    """
    cfg = configure(ExportConfig, cfg, options, "export")
    world = init_world(cfg.device, distributed)
    chunk_size, device, cache_dir, index = cfg.chunk_size, world.device, cfg.cache_dir, cfg.index
    t0 = time.perf_counter()
    if world.main:
        claim_output(out_dir, EMBEDDINGS, [run_dir, catalog])
    model, config = load_model(run_dir, device)
    graph_dir = graph or config["graph_dir"]  # another graph over the same nodes: allowed
    if world.main:
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
        emb = full_graph_embeddings(model, data, chunk_size, device, True, world)
        head, isolated = None, 0
        if cfg.inductive == "head" and model.text is not None:
            head, isolated = _text_head(data, emb)  # new items in the graph: no neighbours
        dim = next(iter(emb.values())).shape[1]
        vectors = torch.zeros(nodes.height, dim)
        for t, v in emb.items():
            mask = torch.tensor((nodes["item_type"] == t).to_numpy())
            vectors[mask] = v[torch.tensor(nodes["node_index"].to_numpy())[mask]]
        s["rows"] = nodes.height
    finish(world)
    if not world.main:
        return {}
    frames = [nodes.select("item_id", "item_type", in_graph=pl.lit(True))]
    mats, skipped = [vectors], 0
    if catalog is not None:
        with step(STAGE, "inductive items", quiet) as s:
            items, new, skipped = _inductive(
                model,
                config,
                catalog,
                nodes["item_id"],
                chunk_size,
                device,
                cache_dir,
                quiet,
                head,
            )
            frames.append(items.select("item_id", "item_type", in_graph=pl.lit(False)))
            mats.append(new)
            s["rows"], s["note"] = items.height, f"skipped {skipped} without text"
    ids = pl.concat(frames)
    mat = torch.cat(mats).numpy().astype(np.float32, copy=False)
    g = read_manifest(graph_dir)
    manifest = {
        "in_graph": nodes.height,
        "inductive": ids.height - nodes.height,
        "skipped_no_text": skipped,
        "normalized": True,
        "run_dir": str(Path(run_dir).absolute()),
        "graph_dir": str(Path(graph_dir).absolute()),
        "dataset": g.get("dataset"),
        "catalog": None if catalog is None else str(Path(catalog).absolute()),
        "model": config["model"],
        "encoder": config.get("encoder"),
        "inductive_method": "model"
        if head is None
        else {"text_head": {**head.report(), "isolated_nodes": isolated}},
    }
    inputs = [run_dir, catalog, graph_dir]
    with atomic_dir(out_dir, EMBEDDINGS, inputs) as tmp, step(STAGE, "write", quiet) as s:
        manifest = write_embeddings(tmp, ids, mat, manifest, index, with_table=True, started=t0)
        s["note"] = manifest["ann"]["index"]
    return manifest
