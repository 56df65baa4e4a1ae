"""``train-hgnn``: link-prediction training of the HGNN with the multi-link sampler.

RUN_DIR holds ``config.json`` (run + model config), ``model.safetensors`` (best weights
by validation MRR), ``checkpoint.pt`` (last epoch: model, optimizers, epoch, early-stopping
state; tensors only, loaded with ``weights_only=True``), ``metrics.jsonl`` (one line per
epoch) and ``curves.svg``. The batch sequence is a pure function of ``(seed, epoch)``
(see ``audiograph.samplers.link_loader``), so ``--resume`` from the last checkpoint ends
with the same weights as an uninterrupted run. Training runs with torch's deterministic
kernels: some CPU backward kernels of the sampled message passing otherwise accumulate in a
thread-timing-dependent order (gradients differing by ~1e-10, so two runs with one seed
drifted apart); they cost ~5 % of the epoch time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from audiograph.core.atomic import write_bytes
from audiograph.core.distributed import World, average_gradients, init_world, shard, sum_over_ranks
from audiograph.core.errors import ContractError
from audiograph.core.finite import check_loss
from audiograph.core.precision import resolve_precision
from audiograph.core.runs import Run
from audiograph.core.training import TrainingLoop
from audiograph.graphs.store import load_graph, read_manifest
from audiograph.hgnn.config import HGNNConfig
from audiograph.hgnn.inference import full_graph_embeddings
from audiograph.hgnn.loss import in_batch_softmax_loss, max_margin_loss
from audiograph.hgnn.model import (
    HeteroSAGE,
    ModelSpec,
    dense_and_sparse,
    embed_batch,
    optimizers,
)
from audiograph.hgnn.rec_validation import RecValidation
from audiograph.hgnn.validate import link_metrics, split_edges
from audiograph.samplers import LinkNeighborLoader, NeighborSampler
from audiograph.samplers.threads import FREE_CORES, torch_threads

KIND = "hgnn-run"


def build_model(data: HeteroData, cfg: HGNNConfig, feature_dim: int) -> HeteroSAGE:
    """A fresh model for ``data`` with ``cfg``'s model settings (seeded by ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    return ModelSpec.of_graph(data, feature_dim, cfg.hidden, cfg.num_layers, cfg.conv).build()


def _deterministic_kernels(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` with ``torch.use_deterministic_algorithms(True, warn_only=True)``,
    restoring the caller's setting afterwards."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.use_deterministic_algorithms(before, warn_only=warn_only)

    return wrapper


@_deterministic_kernels
def train_hgnn(
    graph_dir: str | Path,
    run_dir: str | Path,
    cfg: HGNNConfig | None = None,
    *,
    resume: bool = False,
    quiet: bool = False,
    distributed: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train (or resume) a run; returns the last epoch's metrics. ``options`` (e.g.
    ``epochs=3``) override fields of ``cfg``. On ``resume`` the run's own settings are
    used; ``cfg`` and ``options`` may change only epochs, device and prefetch.

    ``distributed``: one rank of a ``torchrun`` launch (:mod:`audiograph.core.distributed`):
    every rank trains on its share of each epoch's batches with gradients averaged over
    the ranks, and rank 0 writes the run. W ranks with ``accumulate=A`` take the same
    optimizer steps as one process with ``accumulate=W*A``."""
    world = init_world(options.get("device", (cfg or HGNNConfig()).device), distributed)
    loop = TrainingLoop("train-hgnn", KIND, run_dir, {"graph_dir": graph_dir}, world, quiet)
    cfg = loop.open(HGNNConfig, cfg, resume, options)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, world.device))
    graph_dir, loop.advice = loop.inputs["graph_dir"], _advice(cfg)
    manifest = read_manifest(graph_dir)
    device = torch.device(world.device)
    full = load_graph(graph_dir)
    train_data, val_edges = split_edges(full, cfg.val_fraction, cfg.seed)
    model = build_model(train_data, cfg, manifest["feature_dim"]).to(device)
    opts = optimizers(model, cfg.lr)
    progress = loop.start(_run_config(graph_dir, cfg, model, manifest), model, {"optimizers": opts})
    has_text = {t: train_data[t].has_text.to(device) for t in train_data.node_types}
    loader = LinkNeighborLoader(
        train_data,
        cfg.fanout,
        cfg.batch_size,
        cfg.num_negatives,
        cfg.negative_sampling,
        None if cfg.balance == "none" else cfg.balance,
        weighted=cfg.weighted,
        seed=cfg.seed,
        device=device,
        prefetch=cfg.prefetch,
        max_epoch_edges=cfg.max_epoch_edges,
    )
    val_sampler = NeighborSampler(train_data, cfg.fanout, device=device)
    rec = _rec_validation(graph_dir, train_data, cfg)
    last: dict[str, Any] = {}
    per_epoch = sum(len(step) for step in shard(loader.num_batches(0), world, cfg.accumulate))
    # one bar for the whole run, so its ETA is the run's (an early stop ends it sooner)
    left = max(cfg.epochs - progress.epoch, 0)
    bar = tqdm(total=per_epoch * left, unit="batch", disable=quiet or not world.main)
    for epoch in loop.epochs(cfg.epochs, cfg.patience):
        t0 = time.perf_counter()
        total, n_edges, n_batches = _epoch(model, opts, loader, epoch, cfg, has_text, world, bar)
        seconds = time.perf_counter() - t0
        check_loss(total, f"epoch {epoch}", loop.advice)  # every rank: the sum over ranks
        val = link_metrics(
            model,
            val_sampler,
            val_edges,
            has_text,
            cfg.eval_candidates,
            cfg.max_val_edges,
            cfg.seed,
        )
        mrr = sum(v["mrr"] for v in val.values()) / max(len(val), 1)
        last = {
            "epoch": epoch,
            "train_loss": total / max(n_batches, 1),
            "edges_per_s": n_edges / seconds,
            "seconds": seconds,
            "val_mean_mrr": mrr,
            "val": val,
        }
        line = (
            f"loss {last['train_loss']:.4f}, {last['edges_per_s']:,.0f} edges/s, "
            f"val mean MRR {mrr:.4f}"
        )
        score = mrr
        if rec is not None:
            with torch_threads(FREE_CORES.free()):
                emb = full_graph_embeddings(model, full, device=world.device, symmetric=True)
            score = last["val_rec_recall@10"] = rec(emb)
            line += f", val HGNN-KNN recall@10 {score:.4f}"
        line += f" ({seconds:.0f}s)"
        loop.end_epoch(last, score, line)
        if world.main:
            _plot(loop.run)
    bar.close()
    loop.close()
    return last


def _rec_validation(graph_dir: Any, data: HeteroData, cfg: HGNNConfig) -> RecValidation | None:
    """The recommendation-shaped validation that selects the weights (``cfg.selection``:
    auto takes it where the graph is a split's, else the edge MRR)."""
    if cfg.selection == "edges":
        return None
    rec = RecValidation.of_graph(graph_dir, data.node_types, cfg.val_type)
    if rec is None and cfg.selection == "recommendation":
        raise ContractError(
            f"{graph_dir}: selection = 'recommendation' needs a graph built from a split's "
            "graph part with validation users who have label-window items"
            + (f" of type {cfg.val_type!r}" if cfg.val_type else "")
        )
    return rec


def _epoch(
    model: HeteroSAGE,
    opts: list[torch.optim.Optimizer],
    loader: LinkNeighborLoader,
    epoch: int,
    cfg: HGNNConfig,
    has_text: dict[str, torch.Tensor],
    world: World,
    bar: tqdm,
) -> tuple[float, int, int]:
    """One epoch of this rank's steps (:func:`~audiograph.core.distributed.shard`); each
    step averages its ``accumulate`` micro-batches' gradients, then the ranks'. Returns
    (summed micro-batch loss, supervision edges, micro-batches) of this rank."""
    model.train()
    for opt in opts:  # the schedule is a function of the epoch: resumes keep it
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cfg.lr_decay**epoch
    steps = shard(loader.num_batches(epoch), world, cfg.accumulate)
    mine = [b for step in steps for b in step]
    dense, sparse = dense_and_sparse(model)
    t0, total, n_edges, n_batches = time.perf_counter(), 0.0, 0, 0
    bar.set_description(f"epoch {epoch}")
    batches = loader.iter_epoch(epoch, only=mine if world.size * cfg.accumulate > 1 else None)
    for i, batch in enumerate(batches):
        if i % cfg.accumulate == 0:
            for opt in opts:
                opt.zero_grad()
        # torch's pool at the free cores too (the kernels size numba's themselves)
        with torch_threads(FREE_CORES.free()):
            loss = batch_loss(model, batch, has_text, cfg)
            value = loss.item()
            if world.size == 1:
                check_loss(value, f"epoch {epoch}, step {i}", _advice(cfg))
            (loss / cfg.accumulate if cfg.accumulate > 1 else loss).backward()
            if i % cfg.accumulate == cfg.accumulate - 1:
                average_gradients(dense, sparse, world)
                for opt in opts:
                    opt.step()
        pos = supervision_edges(batch)
        total, n_edges, n_batches = total + value, n_edges + pos, n_batches + 1
        bar.update(1)
        rate = n_edges / (time.perf_counter() - t0)
        bar.set_postfix(loss=f"{total / n_batches:.4f}", edges_s=f"{rate:.0f}", refresh=False)
    return sum_over_ranks((total, n_edges, n_batches), world)


def batch_loss(
    model: HeteroSAGE, batch: HeteroData, has_text: dict[str, torch.Tensor], cfg: HGNNConfig
) -> torch.Tensor:
    """The link-prediction loss of one sampled batch (``cfg.loss``: margin or softmax)."""
    z = embed_batch(model, batch, has_text, cfg.precision)
    if cfg.loss == "margin":
        return max_margin_loss(z, batch, cfg.margin)
    return in_batch_softmax_loss(z, batch, cfg.temperature, cfg.logq)


def supervision_edges(batch: HeteroData) -> int:
    """The positive supervision edges of a batch (over its edge types)."""
    labelled = [et for et in batch.edge_types if "edge_label_index" in batch[et]]
    return sum(int(batch[et].edge_label_index.shape[1]) for et in labelled)


def _advice(cfg: HGNNConfig) -> str:
    other = (
        f"--margin (now {cfg.margin:g})"
        if cfg.loss == "margin"
        else (f"--temperature (now {cfg.temperature:g})")
    )
    return f"try a lower --lr (now {cfg.lr:g}) or another {other}"


def _run_config(graph_dir, cfg: HGNNConfig, model: HeteroSAGE, manifest: dict) -> dict:
    enc = manifest.get("encoder")
    return {
        "graph_dir": str(Path(graph_dir).absolute()),
        "train": asdict(cfg),
        "model": ModelSpec(
            model.node_types,
            model.edge_types,
            manifest["node_types"],
            manifest["feature_dim"],
            cfg.hidden,
            cfg.num_layers,
            cfg.conv,
        ).saved(),
        "encoder": None
        if enc is None
        else {"path": enc["path"], "max_length": manifest["config"].get("max_length", 128)},
    }


def _plot(run: Run) -> None:
    """Train loss and validation MRR per epoch as a dependency-free SVG."""
    rows = run.metrics()
    if not rows:
        return
    w, h, pad = 480, 240, 30

    def line(values: list[float], color: str) -> str:
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        step = (w - 2 * pad) / max(len(values) - 1, 1)
        pts = " ".join(
            f"{pad + i * step:.1f},{h - pad - (v - lo) / span * (h - 2 * pad):.1f}"
            for i, v in enumerate(values)
        )
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'

    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
        f'<rect width="{w}" height="{h}" fill="white"/>'
        + line([r["train_loss"] for r in rows], "steelblue")
        + line([r["val_mean_mrr"] for r in rows], "darkorange")
        + f'<text x="{pad}" y="18" font-size="12"><tspan fill="steelblue">train loss'
        f'</tspan> · <tspan fill="darkorange">validation mean MRR</tspan> '
        f"(each scaled to its range; {len(rows)} epochs)</text></svg>"
    )
    write_bytes(run.path / "curves.svg", svg.encode())
