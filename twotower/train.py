"""Training of the user-decoupled two-tower model (2T-HGNN, Spotify 2024).

Each user's training interactions are split (seeded; temporally when every row has a
``ts``) into a *history* part, from which the user-tower input is computed, and a *label*
part (``label_fraction`` of the user's distinct items): the positive ``(user, item)`` pairs.
So a positive is never part of its own user's input (no self-label leak). ``val_fraction``
of the label users are held out: recall@10 of their label items against the whole catalog
(their history items excluded) drives early stopping; the best weights are kept. With
``resample`` (default) the other users get a fresh random history/label split every epoch
(seeded by ``(seed, epoch)``), so every training interaction serves as a label over time.

Loss: in-batch sampled softmax with logQ correction (each column's logit minus the log of
its expected count in a batch: ``batch_size * p(item)`` over the training interactions), optional
``extra_negatives`` uniform items (corrected by ``log(extra_negatives / candidates)``),
accidental hits masked.

RUN_DIR: ``config.json`` (``kind="twotower-run"``, ``data_dir``, ``emb_dir``, ``train``
config, input ``spec``), ``model.safetensors`` (best), ``checkpoint.pt`` (last epoch: model,
optimizer, epoch, early-stopping state; tensors only), ``metrics.jsonl`` (one line per
epoch). The batch order is a pure function of ``(seed, epoch)``, so ``resume=True`` ends
with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from graphs.contract import Dataset, read_dataset
from graphs.errors import ContractError, check_device, check_min
from graphs.featurize import DEFAULT_CACHE
from graphs.runs import (
    CHECKPOINT,
    Run,
    claim_run,
    exact,
    load_state,
    resume_run,
    resumed_config,
    start_run,
)
from twotower.features import align_embeddings, load_embeddings, text_vectors
from twotower.model import (
    InputSpec,
    TwoTower,
    build_spec,
    item_inputs,
    recall_at_k,
    sampled_softmax_loss,
    user_inputs,
)


@dataclass
class TwoTowerConfig:
    """Options of the two-tower trainer (defaults follow the 2T-HGNN paper where it says)."""

    tower_dims: list[int] = field(default_factory=lambda: [512, 256, 128])
    cat_dim: int = 16
    temperature: float = 0.05
    lr: float = 1e-3
    batch_size: int = 1024
    epochs: int = 20
    patience: int = 3
    logq: bool = True
    extra_negatives: int = 0
    label_fraction: float = 0.2
    val_fraction: float = 0.1
    max_val_users: int = 5000
    use_hgnn: bool = True
    skip: bool = True  # towers start at the history-mean k-NN and learn a correction
    resample: bool = True  # a fresh random history/label split of the train users per epoch
    weighted: bool = True
    target_type: str | None = None  # positives, negatives and validation of this type only
    encoder: str | None = None  # text encoder folder (None: the bundled MiniLM)
    cache_dir: str | None = None  # text-vector cache (None: the default ~/.cache/audiograph)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        self.tower_dims = list(self.tower_dims)
        if not self.tower_dims or any(d < 1 for d in self.tower_dims):
            raise ContractError(f"tower_dims must be sizes >= 1, got {self.tower_dims}")
        check_min("batch-size", self.batch_size, 2)
        for name in ("cat_dim", "patience", "max_val_users"):
            check_min(name.replace("_", "-"), getattr(self, name), 1)
        check_min("epochs", self.epochs, 0)
        check_min("extra-negatives", self.extra_negatives, 0)
        for name in ("label_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ContractError(f"--{name.replace('_', '-')} must be in (0, 1), "
                                    f"got {getattr(self, name)}")  # fmt: skip
        if not self.lr > 0 or not self.temperature > 0:
            raise ContractError("--lr and --temperature must be > 0")
        check_device(self.device)


KIND = "twotower-run"


def catalog_vectors(
    items: pl.DataFrame,
    emb_dir: str | Path | None,
    cfg: TwoTowerConfig,
    quiet: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(text [I, 384], hgnn [I, dim] | None)`` row-aligned with ``items``; catalog items
    missing from the embeddings get zero HGNN vectors."""
    cache = DEFAULT_CACHE if cfg.cache_dir is None else cfg.cache_dir
    text = text_vectors(items, cfg.encoder, cache, progress=not quiet)
    if not cfg.use_hgnn:
        return text, None
    if emb_dir is None:
        raise ContractError("use_hgnn needs an embeddings directory (audiograph export)")
    ids, mat = load_embeddings(emb_dir)
    hgnn, missing = align_embeddings(items, ids, mat)
    if missing == items.height:
        raise ContractError(
            f"{emb_dir}: none of the catalog's item_ids is in ids.parquet"
            f" (example item_id={items['item_id'][0]!r})"
        )
    return text, hgnn


def history_vectors(text: np.ndarray, hgnn: np.ndarray | None) -> np.ndarray:
    """The vectors user histories are averaged over: ``[text | HGNN]`` ``[I, 384 + 128]``
    with HGNN inputs (2T-HGNN is the plain two-tower plus HGNN inputs), else the text."""
    return text if hgnn is None else np.concatenate([text, hgnn], axis=1)


def split_history_labels(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    label_fraction: float,
    seed: int,
    target_type: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(history rows, labels user_id/item_id)``: per user, ``round(label_fraction * n)``
    of its ``n`` distinct (target-type) items, at least 1 and leaving >= 1 history item,
    become labels (the latest by first ``ts`` when every row has one, else random);
    every interaction row with another item is history."""
    pairs = (
        interactions.group_by("user_id", "item_id")
        .agg(pl.col("ts").min())
        .sort("user_id", "item_id")
        .join(items.select("item_id", "item_type"), on="item_id", maintain_order="left")
    )
    rng = np.random.default_rng(seed)
    cand = (
        pl.col("item_type").is_not_null()
        if target_type is None
        else pl.col("item_type") == target_type
    )
    pairs = pairs.with_columns(
        _r=pl.Series(rng.random(pairs.height)),
        _n=pl.len().over("user_id"),
        _nc=cand.sum().over("user_id"),
    )
    n_label = pl.min_horizontal(
        pl.max_horizontal((pl.col("_nc") * label_fraction).round(), 1),
        pl.col("_nc"),
        pl.col("_n") - 1,
    )
    keys = ["ts", "_r"] if interactions["ts"].null_count() == 0 else ["_r"]
    labels = (
        pairs.filter(cand)
        .sort(keys, descending=True)
        .filter(pl.int_range(pl.len()).over("user_id") < n_label)
        .select("user_id", "item_id")
        .sort("user_id", "item_id")
    )
    return interactions.join(labels, on=["user_id", "item_id"], how="anti"), labels


def _index(ids: pl.Series, keys: pl.Series) -> torch.Tensor:
    """Position in ``keys`` of each of ``ids`` (all present) as int64 ``[len(ids)]``."""
    lookup = pl.DataFrame({"k": keys, "i": np.arange(keys.len(), dtype=np.int64)})
    joined = pl.DataFrame({"k": ids}).join(lookup, on="k", maintain_order="left")
    return torch.from_numpy(joined["i"].to_numpy().copy())


@dataclass
class Prepared:
    """Training tensors (on ``cfg.device``): every catalog item's tower inputs, the
    validation users' inputs, their label and history pairs ``(val_row, item_index)``, the
    candidate-item mask (target type), and what :meth:`epoch_pairs` needs to draw the
    training users' history/label split of an epoch."""

    spec: InputSpec
    item: tuple[torch.Tensor, torch.Tensor]
    val_user: tuple[torch.Tensor, torch.Tensor]
    val_labels: tuple[torch.Tensor, torch.Tensor]
    val_exclude: tuple[torch.Tensor, torch.Tensor]
    allowed: torch.Tensor | None
    ds: Dataset
    train_inter: pl.DataFrame
    hist_vectors: np.ndarray
    cfg: TwoTowerConfig

    def epoch_pairs(
        self, epoch: int
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``((cat, dense) of the label users, (user_row, item_index) positives)`` of
        ``epoch``: with ``cfg.resample`` every epoch draws a fresh random history/label
        split of the training users (seeded by ``(seed, epoch)``), so over the epochs
        every training interaction serves as a label; else the seed's split every epoch."""
        cfg, ds, dev = self.cfg, self.ds, torch.device(self.cfg.device)
        seed = cfg.seed * 1_000_003 + epoch + 7 if cfg.resample else cfg.seed
        inter = self.train_inter.with_columns(ts=None) if cfg.resample else self.train_inter
        history, labels = split_history_labels(
            inter, ds.items, cfg.label_fraction, seed, cfg.target_type
        )
        users = labels["user_id"].unique().sort()
        ucat, udense = user_inputs(users, ds.users, history, ds.items, self.hist_vectors,
                                   self.spec, cfg.weighted)  # fmt: skip
        pairs = (_index(labels["user_id"], users).to(dev),
                 _index(labels["item_id"], ds.items["item_id"]).to(dev))  # fmt: skip
        return (ucat.to(dev), udense.to(dev)), pairs


def prepare(
    ds: Dataset,
    emb_dir: str | Path | None,
    cfg: TwoTowerConfig,
    spec: InputSpec | None = None,
    quiet: bool = True,
) -> Prepared:
    """Hold out ``val_fraction`` of the users with labels (seeded), split their history
    and labels, and build the item and validation inputs (``spec`` from the data unless
    given, e.g. when resuming)."""
    if ds.interactions is None:
        raise ContractError(f"{ds.path}: no interactions.parquet to train on")
    items, dev = ds.items, torch.device(cfg.device)
    text, hgnn = catalog_vectors(items, emb_dir, cfg, quiet)
    history, labels = split_history_labels(
        ds.interactions, items, cfg.label_fraction, cfg.seed, cfg.target_type
    )
    hist_vectors = history_vectors(text, hgnn)
    if spec is None:
        spec = build_spec(items, ds.interactions, ds.users, hist_vectors.shape[1],
                          text.shape[1], 0 if hgnn is None else hgnn.shape[1])  # fmt: skip
    users = labels["user_id"].unique().sort()
    if users.len() < 2:
        raise ContractError(f"{ds.path}: fewer than 2 users with >= 2 distinct items to train on")
    n_val = min(round(cfg.val_fraction * users.len()), users.len() - 1, cfg.max_val_users)
    is_val = np.zeros(users.len(), bool)
    is_val[np.random.default_rng(cfg.seed + 1).permutation(users.len())[:n_val]] = True
    val_users = users.filter(pl.Series(is_val))
    vcat, vdense = user_inputs(val_users, ds.users, history, items, hist_vectors, spec,
                               cfg.weighted)  # fmt: skip
    ids = items["item_id"]

    def pairs(df: pl.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        return _index(df["user_id"], val_users).to(dev), _index(df["item_id"], ids).to(dev)

    in_val = pl.col("user_id").is_in(val_users.implode())
    allowed = None if cfg.target_type is None else torch.from_numpy(
        (items["item_type"] == cfg.target_type).to_numpy()).to(dev)  # fmt: skip
    return Prepared(
        spec,
        tuple(t.to(dev) for t in item_inputs(items, spec, text, hgnn, ds.interactions)),
        (vcat.to(dev), vdense.to(dev)),
        pairs(labels.filter(in_val)),
        pairs(history.filter(in_val)),
        allowed,
        ds,
        ds.interactions.filter(~in_val),
        hist_vectors,
        cfg,
    )


def train_twotower(
    data_dir: str | Path,
    emb_dir: str | Path | None,
    run_dir: str | Path,
    cfg: TwoTowerConfig | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train (or resume) a two-tower run on the dataset ``data_dir`` (HGNN vectors from
    ``emb_dir`` when ``cfg.use_hgnn``); returns the last epoch's metrics plus the best."""
    inputs = {"data_dir": data_dir, "emb_dir": emb_dir}
    run: Run | None = None
    if resume:
        run = resume_run(run_dir, KIND, inputs)
        cfg = resumed_config(TwoTowerConfig, run.config["train"], cfg, str(run.path))
        data_dir, emb_dir = run.config["data_dir"], run.config["emb_dir"]
    else:
        cfg = cfg or TwoTowerConfig()
        claim_run(run_dir, KIND, inputs.values())
    device = torch.device(cfg.device)
    ds = read_dataset(data_dir)
    spec = InputSpec(**run.config["spec"]) if run else None
    d = prepare(ds, emb_dir, cfg, spec, quiet)
    spec, (icat, idense), allowed, n_val = d.spec, d.item, d.allowed, len(d.val_user[0])
    (ucat, udense), (pu, pi) = d.epoch_pairs(0)
    # logQ from the item frequency among all training interactions (stable across epochs)
    known = _index(d.train_inter.join(d.ds.items.select("item_id"), on="item_id")["item_id"],
                   d.ds.items["item_id"]).to(device)  # fmt: skip
    if allowed is not None:
        known = known[allowed[known]]
    freq = torch.bincount(known, minlength=len(icat)).float() / max(len(known), 1)
    log_q = torch.log(freq * min(cfg.batch_size, len(pi)) + 1e-12)
    candidates = torch.arange(len(icat), device=device)
    if allowed is not None:
        candidates = candidates[allowed]
    neg_log_q = math.log(max(cfg.extra_negatives, 1) / max(len(candidates), 1))

    torch.manual_seed(cfg.seed)
    model = TwoTower(spec, cfg.tower_dims, cfg.cat_dim, cfg.skip).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = {"epoch": 0, "best": -math.inf, "best_epoch": -1, "bad_epochs": 0}
    if run is None:
        config = {"data_dir": str(Path(data_dir).absolute()),
                  "emb_dir": None if emb_dir is None else str(Path(emb_dir).absolute()),
                  "train": asdict(cfg), "spec": asdict(spec)}  # fmt: skip
        run = start_run(run_dir, KIND, config, inputs)
    elif (ckpt := run.load_checkpoint(device, ("optimizer", *state))) is not None:
        load_state(model, ckpt["model"], run.path / CHECKPOINT)
        load_state(opt, ckpt["optimizer"], run.path / CHECKPOINT)
        state = {k: ckpt[k].item() for k in state}
    t_start, last = time.perf_counter(), {}
    for epoch in range(int(state["epoch"]), cfg.epochs):
        if state["bad_epochs"] >= cfg.patience:
            break
        model.train()
        t0, total, n_batches = time.perf_counter(), 0.0, 0
        if cfg.resample and epoch > 0:
            (ucat, udense), (pu, pi) = d.epoch_pairs(epoch)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(pu), generator=g).to(device)
        starts = range(0, len(pu), cfg.batch_size)
        bar = tqdm(starts, desc=f"epoch {epoch}", disable=quiet)
        for lo in bar:
            b = perm[lo : lo + cfg.batch_size]
            u = model.user(ucat[pu[b]], udense[pu[b]])
            v = model.item(icat[pi[b]], idense[pi[b]])
            neg_v = neg = None
            if cfg.extra_negatives:
                pick = torch.randint(len(candidates), (cfg.extra_negatives,), generator=g)
                neg = candidates[pick.to(device)]
                neg_v = model.item(icat[neg], idense[neg])
            loss = sampled_softmax_loss(u, v, pi[b], cfg.temperature,
                                        log_q[pi[b]] if cfg.logq else None, neg_v, neg,
                                        neg_log_q if cfg.logq else 0.0)  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n_batches = total + loss.item(), n_batches + 1
            bar.set_postfix(loss=f"{total / n_batches:.4f}")
        seconds = time.perf_counter() - t0
        train_loss = total / max(n_batches, 1)
        recall = (
            recall_at_k(model, d.val_user, d.item, d.val_labels, d.val_exclude, allowed)
            if n_val else -train_loss
        )  # fmt: skip
        improved = recall > state["best"]
        state = {
            "epoch": epoch + 1,
            "best": max(recall, state["best"]),
            "best_epoch": epoch if improved else state["best_epoch"],
            "bad_epochs": 0 if improved else state["bad_epochs"] + 1,
        }
        if improved:
            run.save_weights(model.state_dict())
        last = {"epoch": epoch, "train_loss": train_loss, "val_recall@10": recall,
                "seconds": seconds, "pairs_per_s": len(pu) / seconds}  # fmt: skip
        run.log(last)
        tensors = {k: torch.tensor(v, dtype=exact(v)) for k, v in state.items()}
        run.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(),
                             **tensors})  # fmt: skip
        if not quiet:
            print(f"[train-twotower] epoch {epoch}: loss {train_loss:.4f}, "
                  f"val recall@10 {recall:.4f}, {seconds:.1f}s")  # fmt: skip
    last = {**last, "best_val_recall@10": state["best"], "best_epoch": state["best_epoch"]}
    if not quiet:
        print(f"[train-twotower] {len(pu):,} train pairs, {n_val:,} val users; best val "
              f"recall@10 {state['best']:.4f} at epoch {state['best_epoch']} "
              f"({time.perf_counter() - t_start:.1f}s)")  # fmt: skip
    return last
