"""Training benchmark: ``train-hgnn``'s model step vs the same model through PyG, one run.

Both sides get train-hgnn's settings (``HGNNConfig``: hidden, fan-out, batch size,
negatives, loss, precision, Adam + SparseAdam) and the same initial weights:

* **compute only** — the same ``--batches`` batches, sampled once by audiograph's
  ``LinkNeighborLoader``, go through forward, loss, backward and optimizer step of
  ``conv="maxpool"`` (the fused max-pool, :mod:`audiograph.hgnn.maxpool_train`) and of
  ``conv="maxpool-pyg"`` (the same layer through PyG's ``HeteroConv`` +
  ``MessagePassing(aggr="max")``, i.e. ``SAGEConv(project=True, aggr="max")`` without its
  post-aggregation linear), each side with its optimizer: Adam for the dense weights and,
  for the per-node embeddings, :class:`~audiograph.hgnn.row_adam.RowAdam` (audiograph)
  vs torch's ``SparseAdam`` (PyG; the same update);
* **end to end** — sampling included: audiograph's loader (with train-hgnn's prefetch)
  feeding the fused model vs PyG's ``LinkNeighborLoader`` (triplet negatives, one link
  type: the first) feeding the PyG model. PyG's loader needs torch-sparse or pyg-lib and is
  skipped with a message without them. PyG's loader does not remove the batch's own
  supervision edges from its subgraph; audiograph's does.

Reports supervision edges/s, sampled messages/s (edges of the sampled subgraphs), peak
memory (CPU: the process's peak RSS, reset before each side; CUDA: peak allocated) and the
ratios audiograph ÷ PyG. The code lives here so the CLI never imports ``benchmarks/``; its
options are :class:`~audiograph.hgnn.config.TrainBenchConfig`'s.

    audiograph bench-train --graph GRAPH_DIR [--batches 20] [--device cuda] [--json]
    audiograph bench-train                     # the 1 M-item synthetic graph of bench-sampler
    audiograph bench-train --graph G --load 1  # one busy process beside both sides
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData

from audiograph.core.config import configure
from audiograph.core.errors import ContractError
from audiograph.core.precision import resolve_precision
from audiograph.core.types import EdgeType
from audiograph.hgnn.config import HGNNConfig, TrainBenchConfig
from audiograph.hgnn.model import (
    HeteroSAGE,
    dense_and_sparse,
    optimizers,
)
from audiograph.hgnn.train import batch_loss, build_model, supervision_edges
from audiograph.samplers.link_loader import LinkNeighborLoader
from audiograph.samplers.multilink import link_edges
from audiograph.samplers.threads import FREE_CORES, torch_threads

HAS_PYG_SAMPLER = any(importlib.util.find_spec(m) for m in ("pyg_lib", "torch_sparse"))


def peak_memory_reset(device: torch.device) -> None:
    """Start a new peak-memory window (CPU: the kernel's RSS high-water mark)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 2**20


def model_for(data: HeteroData, cfg: HGNNConfig, conv: str, device: torch.device) -> HeteroSAGE:
    """The model ``train-hgnn`` builds, with ``conv`` (seeded: the same initial weights
    for both convs)."""
    dim = next((data[t].x.shape[1] for t in data.node_types if "x" in data[t]), 0)
    return build_model(data, replace(cfg, conv=conv), dim).to(device)


def _step(model, opts, batch: HeteroData, has_text, cfg: HGNNConfig, pyg: bool) -> tuple[int, int]:
    """One step; ours as train-hgnn runs it (torch's pool at the free cores), PyG's as a
    PyG user runs it (torch's pool as configured)."""
    with contextlib.nullcontext() if pyg else torch_threads(FREE_CORES.free()):
        for opt in opts:
            opt.zero_grad()
        batch_loss(model, batch, has_text, cfg).backward()
        for opt in opts:
            opt.step()
    return supervision_edges(batch), sum(
        int(batch[et].edge_index.shape[1]) for et in batch.edge_types
    )


def _timed(
    model, batches, has_text, cfg: HGNNConfig, device: torch.device, pyg: bool = False
) -> dict[str, Any]:
    """Train on ``batches`` (an iterable; the first one is a warm-up, not timed). ``pyg``:
    torch's stock SparseAdam for the node embeddings, as a PyG user has."""
    opts = optimizers(model, cfg.lr)
    if pyg:
        opts[1] = torch.optim.SparseAdam(dense_and_sparse(model)[1], lr=cfg.lr)
    it = iter(batches)
    _step(model, opts, next(it).to(device), has_text, cfg, pyg)
    peak_memory_reset(device)
    t0, edges, messages, n = time.perf_counter(), 0, 0, 0
    for batch in it:
        e, m = _step(model, opts, batch.to(device), has_text, cfg, pyg)
        edges, messages, n = edges + e, messages + m, n + 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    s = time.perf_counter() - t0
    return {
        "batches": n,
        "seconds": round(s, 3),
        "edges_per_s": round(edges / s, 1),
        "messages_per_s": round(messages / s),
        "peak_gb": round(peak_memory_gb(device), 3),
    }


def pyg_batches(
    data: HeteroData, cfg: HGNNConfig, count: int, et: EdgeType, label_index: torch.Tensor
):
    """PyG ``LinkNeighborLoader`` batches of ``label_index`` ``[2, L]`` (link type ``et``),
    in audiograph's batch layout (``edge_label_index``, ``neg_dst``)."""
    from torch_geometric.loader import LinkNeighborLoader as PyGLoader
    from torch_geometric.sampler import NegativeSampling

    loader = PyGLoader(
        data,
        num_neighbors=list(cfg.fanout),
        batch_size=cfg.batch_size,
        edge_label_index=(et, label_index),
        shuffle=True,
        neg_sampling=NegativeSampling("triplet", cfg.num_negatives),
    )
    batches = (b for _ in range(count) for b in loader)  # epochs again on a small graph
    for i, b in enumerate(batches):
        if i == count:
            return
        b[et].edge_label_index = torch.stack([b[et[0]].src_index, b[et[2]].dst_pos_index])
        b[et].neg_dst = b[et[2]].dst_neg_index.view(-1, cfg.num_negatives)
        yield b


def _take(loader: LinkNeighborLoader, count: int):
    """The first ``count`` batches of epochs 0, 1, ... (a small graph has few per epoch)."""
    epoch = 0
    while count > 0:
        for batch in loader.iter_epoch(epoch):
            if count == 0:
                return
            count -= 1
            yield batch
        epoch += 1


def bench_train(
    data: HeteroData, cfg: HGNNConfig, batches: int = 20, link_type: EdgeType | None = None
) -> dict[str, Any]:
    """The compute-only and end-to-end figures of both sides (see the module docstring);
    ``link_type``: supervise only that link type on both sides (default: audiograph all,
    multi-link balanced as in train-hgnn; PyG the first)."""
    device = torch.device(cfg.device)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, device))
    has_text = {t: data[t].has_text.to(device) for t in data.node_types}
    links = link_edges(data)
    peer_type = link_type or next(iter(links))  # PyG's loader takes one link type
    edges = None if link_type is None else {link_type: links[link_type]}

    def loader(prefetch: int) -> LinkNeighborLoader:  # train-hgnn's loader
        return LinkNeighborLoader(
            data,
            cfg.fanout,
            cfg.batch_size,
            cfg.num_negatives,
            balance_target=None if cfg.balance == "none" else cfg.balance,
            edges=edges,
            seed=cfg.seed,
            device=device,
            prefetch=prefetch,
        )

    sampled = list(_take(loader(0), batches + 1))
    out: dict[str, Any] = {"compute": {}, "end_to_end": {}, "precision": cfg.precision}
    for side, conv in (("audiograph", "maxpool"), ("pyg", "maxpool-pyg")):
        model = model_for(data, cfg, conv, device)
        out["compute"][side] = _timed(model, sampled, has_text, cfg, device, side == "pyg")
    del sampled
    live = _take(loader(cfg.prefetch), batches + 1)
    out["end_to_end"]["audiograph"] = _timed(
        model_for(data, cfg, "maxpool", device), live, has_text, cfg, device
    )
    if HAS_PYG_SAMPLER:
        model = model_for(data, cfg, "maxpool-pyg", device)
        peer = pyg_batches(data, cfg, batches + 1, peer_type, links[peer_type])
        out["end_to_end"]["pyg"] = _timed(model, peer, has_text, cfg, device, pyg=True)
    else:
        out["end_to_end"]["pyg"] = None
        out["skipped"] = "PyG end to end needs torch-sparse or pyg-lib (pip install '.[pyg]')"
    ratio = {
        k: v["audiograph"]["edges_per_s"] / v["pyg"]["edges_per_s"]
        for k, v in out.items()
        if k in ("compute", "end_to_end") and v.get("pyg")
    }
    out["ratio"] = round(ratio["compute"], 2)
    out["ratio_end_to_end"] = round(ratio["end_to_end"], 2) if "end_to_end" in ratio else None
    return out


MODES = {"compute": "compute only", "end_to_end": "end to end"}


def speed_rows(res: dict[str, Any]) -> list[str]:
    """The Markdown header and rows of a ``bench-train`` result: per mode and side, the
    supervision edges/s, sampled messages/s, peak memory and the timed batches."""
    rows = [
        "| mode | side | supervision edges/s | sampled messages/s | peak memory | "
        "timed batches (s) |",
        "|---|---|---|---|---|---|",
    ]
    for mode, label in MODES.items():
        for side, r in res[mode].items():
            cells = ["skipped", "–", "–", "–"]
            if r is not None:
                cells = [f"{r['edges_per_s']:,.0f}", f"{r['messages_per_s']:,}"]
                cells += [f"{r['peak_gb']:.2f} GB", f"{r['batches']} ({r['seconds']})"]
            rows.append(f"| {label} | {side} | " + " | ".join(cells) + " |")
    return rows


def table(res: dict[str, Any], title: str) -> str:
    lines = [title, "", *speed_rows(res)]
    end = res["ratio_end_to_end"]
    lines += [
        "",
        f"audiograph ÷ PyG: compute {res['ratio']:.2f}×, end to end "
        + ("skipped" if end is None else f"{end:.2f}×"),
    ]
    if res.get("skipped"):
        lines.append(res["skipped"])
    return "\n".join(lines)


def _link_type(data: HeteroData, name: str) -> EdgeType:
    """The link type ``SRC__REL__DST`` or, for a node type ``T``, ``T``'s link type with
    itself; a one-line error naming the choices otherwise."""
    links = list(link_edges(data))
    types = {"__".join(et): et for et in links}
    types.update({et[0]: et for et in links if et[0] == et[2]})
    if name not in types:
        raise ContractError(
            f"--seed-type {name}: not a link type of the graph (one of {', '.join(sorted(types))})"
        )
    return types[name]


def run_train_bench(cfg: TrainBenchConfig | None = None, **options: Any) -> dict[str, Any]:
    """Run the benchmark of the module docstring (``cfg``, or its fields as ``options``);
    returns the result (what ``--json`` prints; :func:`table` shows it)."""
    bench = configure(TrainBenchConfig, cfg, options, "run_train_bench")
    cfg = bench.model()
    if bench.graph is not None:
        from audiograph.graphs.store import load_graph

        data = load_graph(bench.graph)
        edges = sum(int(data[et].edge_index.shape[1]) for et in data.edge_types)
        name = (
            f"{Path(bench.graph).name} ({sum(data[t].num_nodes for t in data.node_types):,} "
            f"nodes, {edges:,} directed edges)"
        )
    else:
        from audiograph.samplers.bench import synthetic_graph

        data, name = synthetic_graph(bench.scale), f"synthetic (scale {bench.scale})"
        for t in data.node_types:
            data[t].has_text = torch.zeros(data[t].num_nodes, dtype=torch.bool)
    link_type = None if bench.seed_type is None else _link_type(data, bench.seed_type)
    from audiograph.samplers.bench import busy_processes

    with busy_processes(bench.load):
        res = bench_train(data, cfg, bench.batches, link_type)
    res["load"] = bench.load
    res["seed_type"] = None if link_type is None else "__".join(link_type)
    res["graph"], res["device"], res["threads"] = name, bench.device, torch.get_num_threads()
    res["config"] = {
        "hidden": cfg.hidden,
        "fanout": list(cfg.fanout),
        "batch_size": cfg.batch_size,
        "num_negatives": cfg.num_negatives,
        "loss": cfg.loss,
        "precision": res["precision"],
    }
    return res
