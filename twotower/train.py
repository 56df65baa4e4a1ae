"""Training of the user-decoupled two-tower model (2T-HGNN, Spotify 2024).

On the train part of ``audiograph split`` (with ``refit``, the default) the number of
epochs is chosen on the split's windows first (:func:`select_epochs`: inputs from the fit
window, positives from the label window,
:func:`audiograph.twotower.training_data.prepare_windows`, in memory), then a fresh model
trains on **all of train** for that many epochs, each epoch a fresh random history/label
split of every user (:func:`audiograph.twotower.training_data.prepare` without validation
users): every training pair serves as a label, never in its own user's input in the same
epoch, so the two-tower learns from the same pairs as LightGCN. Without ``refit`` the model
trained on the windows is the run's. On any other dataset each user's training
interactions are split (seeded; temporally when every row has a ``ts``) into a *history*
part, from which the user-tower input is computed, and a *label* part (``label_fraction``
of the user's distinct items): the positive ``(user, item)`` pairs, so a positive is never
part of its own user's input; with ``resample`` (default) the split is drawn afresh every
epoch. ``val_fraction`` of the label users are held out: recall@10 of their label items
against the whole catalog (their history items excluded) drives early stopping; the best
weights are kept.

Loss: in-batch sampled softmax with logQ correction (each column's logit minus the log of
its expected count in a batch: ``batch_size * p(item)`` over the training interactions), optional
``extra_negatives`` uniform items (corrected by ``log(extra_negatives / candidates)``),
accidental hits masked. The launch type (``val_type``, else ``target_type``) gets its own
negatives: ``target_negatives`` uniform items of that type per batch, seen by the rows
whose positive is of that type (in-batch negatives are mostly of the abundant types, while
evaluation ranks the launch type against itself), and ``target_weight`` on those rows.

RUN_DIR: ``config.json`` (``kind="twotower-run"``, ``data_dir``, ``emb_dir``, ``train``
config, input ``spec``), ``model.safetensors`` (best), ``checkpoint.pt`` (last epoch: model,
optimizer, epoch, early-stopping state; tensors only), ``metrics.jsonl`` (one line per
epoch). The batch order is a pure function of ``(seed, epoch)``, so ``resume=True`` ends
with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from audiograph.core.distributed import (
    World,
    average_gradients,
    init_world,
    positions,
    sum_over_ranks,
)
from audiograph.core.finite import check_loss
from audiograph.core.training import TrainingLoop
from audiograph.graphs.contract import read_dataset
from audiograph.twotower.config import TwoTowerConfig
from audiograph.twotower.loss import sampled_softmax_loss
from audiograph.twotower.model import (
    InputSpec,
    TwoTower,
)
from audiograph.twotower.ranking import recall_at_k
from audiograph.twotower.training_data import (
    Prepared,
    index_of,
    prepare,
    prepare_windows,
    split_windows,
    window_validation_users,
)

KIND = "twotower-run"


def launch_items(
    items: pl.DataFrame, cfg: TwoTowerConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(is_launch bool [I], launch item indices [L])``: the items of the launch type
    (``val_type``, else ``target_type``; none without either)."""
    launch_type = cfg.val_type or cfg.target_type
    mask = np.zeros(items.height, bool)
    if launch_type is not None:
        mask = (items["item_type"] == launch_type).to_numpy()
    mask_t = torch.from_numpy(mask.copy()).to(device)
    return mask_t, torch.nonzero(mask_t).view(-1)


@dataclass
class _Batches:
    """What every epoch's batches need besides the model: the prepared data, the logQ
    correction (item frequency among all training interactions, stable across epochs), the
    uniform candidates and the launch type's items (mask, indices) with their log q."""

    d: Prepared
    log_q: torch.Tensor
    candidates: torch.Tensor
    neg_log_q: float
    launch: tuple[torch.Tensor, torch.Tensor]
    launch_log_q: float

    @classmethod
    def of(cls, d: Prepared, cfg: TwoTowerConfig, device: torch.device, n_pairs: int) -> _Batches:
        known = index_of(
            d.train_inter.join(d.ds.items.select("item_id"), on="item_id")["item_id"],
            d.ds.items["item_id"],
        ).to(device)
        if d.allowed is not None:
            known = known[d.allowed[known]]
        n_items = len(d.item[0])
        freq = torch.bincount(known, minlength=n_items).float() / max(len(known), 1)
        log_q = torch.log(freq * min(cfg.batch_size, n_pairs) + 1e-12)
        candidates = torch.arange(n_items, device=device)
        if d.allowed is not None:
            candidates = candidates[d.allowed]
        neg_log_q = math.log(max(cfg.extra_negatives, 1) / max(len(candidates), 1))
        launch = launch_items(d.ds.items, cfg, device)
        launch_log_q = math.log(max(cfg.target_negatives, 1) / max(len(launch[1]), 1))
        return cls(d, log_q, candidates, neg_log_q, launch, launch_log_q)


def _epoch(
    model: TwoTower,
    opt: torch.optim.Optimizer,
    b: _Batches,
    epoch: int,
    cfg: TwoTowerConfig,
    world: World,
    quiet: bool,
    advice: str,
) -> dict[str, Any]:
    """One epoch of this rank's batches (fresh history/label pairs with ``resample``); the
    epoch's metrics (train loss, validation recall@10 when the data holds validation users,
    seconds, pairs/s)."""
    model.train()
    t0, total, n_batches, device = time.perf_counter(), 0.0, 0, b.log_q.device
    (icat, idense), d = b.d.item, b.d
    (ucat, udense), (pu, pi) = d.epoch_pairs(epoch if cfg.resample else 0)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    perm = torch.randperm(len(pu), generator=g).to(device)
    starts = range(0, len(pu), cfg.batch_size)
    mine = positions(len(starts), world, cfg.accumulate)
    params = list(model.parameters())
    bar = tqdm(starts, desc=f"epoch {epoch}", disable=quiet or not world.main)
    for n, lo in enumerate(bar):
        pick = pick_launch = None  # drawn for every batch: the same stream on every rank
        if cfg.extra_negatives:
            pick = torch.randint(len(b.candidates), (cfg.extra_negatives,), generator=g)
        if cfg.target_negatives and len(b.launch[1]):
            pick_launch = torch.randint(len(b.launch[1]), (cfg.target_negatives,), generator=g)
        if (k := mine.get(n)) is None:
            continue
        if k % cfg.accumulate == 0:
            opt.zero_grad()
        rows_b = perm[lo : lo + cfg.batch_size]
        hide = torch.Generator().manual_seed((cfg.seed * 1_000_003 + epoch) * 100_003 + n)
        u = model.user(ucat[pu[rows_b]], udense[pu[rows_b]])
        v = model.item(model.hide_ids(icat[pi[rows_b]], hide), idense[pi[rows_b]])
        negatives, rows = [], b.launch[0][pi[rows_b]]
        if pick is not None:
            neg = b.candidates[pick.to(device)]
            negatives.append(
                (model.item(icat[neg], idense[neg]), neg, b.neg_log_q if cfg.logq else 0.0, None)
            )
        if pick_launch is not None:
            neg = b.launch[1][pick_launch.to(device)]
            launch_q = b.launch_log_q if cfg.logq else 0.0
            negatives.append((model.item(icat[neg], idense[neg]), neg, launch_q, rows))
        weight = None
        if cfg.target_weight != 1.0:
            weight = torch.where(rows, cfg.target_weight, 1.0)
        log_q = b.log_q[pi[rows_b]] if cfg.logq else None
        loss = sampled_softmax_loss(u, v, pi[rows_b], cfg.temperature, log_q, negatives, weight)
        value = loss.item()
        if world.size == 1:
            check_loss(value, f"epoch {epoch}, step {n}", advice)
        (loss / cfg.accumulate if cfg.accumulate > 1 else loss).backward()
        if k % cfg.accumulate == cfg.accumulate - 1:
            average_gradients(params, [], world)
            opt.step()
        total, n_batches = total + value, n_batches + 1
        bar.set_postfix(loss=f"{total / n_batches:.4f}")
    total, n_batches = sum_over_ranks((total, n_batches), world)
    seconds = time.perf_counter() - t0
    train_loss = check_loss(total / max(n_batches, 1), f"epoch {epoch}", advice)
    out = {"epoch": epoch, "train_loss": train_loss, "seconds": seconds}
    if len(d.val_user[0]):
        among = d.allowed if d.val_allowed is None else d.val_allowed
        out["val_recall@10"] = recall_at_k(
            model, d.val_user, d.item, d.val_labels, d.val_exclude, among
        )
    return {**out, "pairs_per_s": len(pu) / seconds}


def select_epochs(
    d: Prepared, cfg: TwoTowerConfig, world: World, quiet: bool, advice: str
) -> dict[str, Any]:
    """The epochs a refit trains: a model trained on the windows (``d``: inputs from fit,
    positives from the label window) until ``cfg.epochs`` or ``cfg.patience`` epochs
    without a better validation recall@10, in memory. Returns ``{"val_recall@10": [per
    epoch], "best_epoch", "epochs": best_epoch + 1, "seconds"}``."""
    t0, device = time.perf_counter(), torch.device(world.device)
    b = _Batches.of(d, cfg, device, len(d.epoch_pairs(0)[1][0]))
    torch.manual_seed(cfg.seed)
    model = TwoTower.of_config(d.spec, cfg)
    model.set_history_table(d.hist_vectors)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    curve: list[float] = []
    best, best_epoch = -math.inf, 0
    for epoch in range(cfg.epochs):
        m = _epoch(model, opt, b, epoch, cfg, world, True, advice)
        recall = m.get("val_recall@10", -m["train_loss"])
        curve.append(recall)
        if recall > best:
            best, best_epoch = recall, epoch
        if not quiet and world.main:
            print(f"[train-twotower] selection epoch {epoch}: val recall@10 {recall:.4f}")
        if epoch - best_epoch >= cfg.patience:
            break
    seconds = round(time.perf_counter() - t0, 2)
    return {
        "val_recall@10": curve,
        "best_epoch": best_epoch,
        "epochs": best_epoch + 1,
        "seconds": seconds,
    }


def select_structure(
    d: Prepared, cfg: TwoTowerConfig, world: World, quiet: bool, advice: str
) -> dict[str, Any]:
    """:func:`select_epochs` for the settings as given and, for every switch of
    ``cfg.choose``, with it flipped; the best validation recall@10 wins (ties: the
    earlier, the settings as given first). Returns the winner's selection plus
    ``"chosen"`` (``{switch: value}``) and ``"tried"`` (``{"skip=True": best recall}``)."""
    tries = [{name: getattr(cfg, name) for name in cfg.choose}]
    for name in cfg.choose:
        tries.append({**tries[0], name: not getattr(cfg, name)})
    best: dict[str, Any] | None = None
    tried: dict[str, float] = {}
    for change in tries:
        sel = select_epochs(d, replace(cfg, **change), world, quiet, advice)
        label = " ".join(f"{k}={v}" for k, v in change.items()) or "as given"
        tried[label] = max(sel["val_recall@10"])
        if not quiet and world.main:
            print(f"[train-twotower] selection {label}: best val recall@10 {tried[label]:.4f}")
        if best is None or tried[label] > max(best["val_recall@10"]):
            best = {**sel, "chosen": change}
    assert best is not None
    return {**best, "tried": tried}


def train_twotower(
    data_dir: str | Path,
    emb_dir: str | Path | None,
    run_dir: str | Path,
    cfg: TwoTowerConfig | None = None,
    *,
    resume: bool = False,
    quiet: bool = False,
    distributed: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train (or resume) a two-tower run on the dataset ``data_dir`` (HGNN vectors from
    ``emb_dir`` when ``cfg.use_hgnn``; ``options`` override fields of ``cfg``); returns
    the last epoch's metrics plus the best.

    On the train part of a split with ``cfg.refit`` (default) the epochs are chosen on the
    windows first (:func:`select_epochs`, recorded in ``config.json`` as ``"selection"``),
    then a fresh model trains on all of train for that many epochs; its epoch lines carry
    the selection run's validation recall of the same epoch.

    ``distributed``: one rank of a ``torchrun`` launch, as in
    :func:`audiograph.hgnn.train.train_hgnn` (each rank its share of the batches, gradients
    averaged, rank 0 writes; W ranks = one process with ``accumulate=W``)."""
    world = init_world(options.get("device", (cfg or TwoTowerConfig()).device), distributed)
    inputs = {"data_dir": data_dir, "emb_dir": emb_dir}
    loop = TrainingLoop("train-twotower", KIND, run_dir, inputs, world, quiet)
    cfg = loop.open(TwoTowerConfig, cfg, resume, options)
    data_dir, emb_dir = loop.inputs["data_dir"], loop.inputs["emb_dir"]
    loop.advice = (
        f"try a lower --lr (now {cfg.lr:g}) or another --temperature (now {cfg.temperature:g})"
    )
    windows = split_windows(data_dir)
    device = torch.device(world.device)
    spec = InputSpec(**loop.run.config["spec"]) if loop.run else None
    selection = loop.run.config.get("selection") if loop.run else None
    if windows is None:
        d = prepare(read_dataset(data_dir), emb_dir, cfg, spec, quiet)
    elif not cfg.refit:  # history from the fit window, positives from the label window
        label_rows = read_dataset(windows["labels"]).interactions
        fit, val_ids = read_dataset(windows["fit"]), window_validation_users(windows)
        d = prepare_windows(fit, label_rows, emb_dir, cfg, spec, quiet, val_ids)
    else:  # epochs chosen on the windows, then every pair of train is a label
        if selection is None:
            label_rows = read_dataset(windows["labels"]).interactions
            fit = read_dataset(windows["fit"])
            val_ids = window_validation_users(windows)
            w = prepare_windows(fit, label_rows, emb_dir, cfg, None, quiet, val_ids)
            selection = select_structure(w, cfg, world, quiet, loop.advice)
        cfg = replace(cfg, **selection.get("chosen", {}))  # saved so: the run is that model
        d = prepare(read_dataset(data_dir), emb_dir, cfg, spec, quiet, validate=False)
    spec, n_val = d.spec, len(d.val_user[0])
    n_pairs = len(d.epoch_pairs(0)[1][0])
    batches = _Batches.of(d, cfg, device, n_pairs)

    torch.manual_seed(cfg.seed)
    model = TwoTower.of_config(spec, cfg)
    model.set_history_table(d.hist_vectors)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    config = {
        "data_dir": str(Path(data_dir).absolute()),
        "emb_dir": None if emb_dir is None else str(Path(emb_dir).absolute()),
        "train": asdict(cfg),
        "spec": asdict(spec),
        "windows": None if windows is None else {k: str(v) for k, v in windows.items()},
        "selection": selection,
    }
    loop.start(config, model, {"optimizer": opt}, windows)
    epochs, patience = cfg.epochs, cfg.patience
    if selection is not None:  # no validation in the refit: its epochs were chosen
        epochs, patience = min(cfg.epochs, selection["epochs"]), cfg.epochs + 1
    t_start, last = time.perf_counter(), {}
    for epoch in loop.epochs(epochs, patience):
        last = _epoch(model, opt, batches, epoch, cfg, world, quiet, loop.advice)
        if selection is not None:
            last["val_recall@10"] = selection["val_recall@10"][epoch]
            score = None
        else:
            score = last.get("val_recall@10", -last["train_loss"])
            last.setdefault("val_recall@10", score)
        line = (
            f"loss {last['train_loss']:.4f}, val recall@10 {last['val_recall@10']:.4f}, "
            f"{last['seconds']:.1f}s"
        )
        loop.end_epoch(last, score, line)
    best, best_epoch = loop.progress.best, loop.progress.best_epoch
    if selection is not None:
        best, best_epoch = max(selection["val_recall@10"]), selection["best_epoch"]
    last = {**last, "best_val_recall@10": best, "best_epoch": best_epoch}
    loop.close()
    if not quiet and world.main:
        what = f"{n_val:,} val users" if selection is None else "refit on all of train"
        print(
            f"[train-twotower] {n_pairs:,} train pairs, {what}; best val "
            f"recall@10 {best:.4f} at epoch {best_epoch} ({time.perf_counter() - t_start:.1f}s)"
        )
    return last
