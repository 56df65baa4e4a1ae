"""Training of the user prefix (Embedding-to-Prefix) on a frozen generative run.

Examples come from the generative run's own training data (the train side of a split):

* ``search``: ``(user, query, item)`` triples (:func:`~.examples.personal_queries`):
  input = the user's soft tokens + ``[SEARCH] + query``, target = the item's SID;
* ``rec``: ``(user, item)`` of the user's interactions: input = the user's soft tokens +
  ``[REC]``, target = the item's SID.

Only users with a vector and items with a SID take part. The loss is the generative
model's (cross-entropy over SID tokens); its weights get no gradient and never change
(``config.json`` records their digest, checked when the prefix is loaded).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from audiograph.core.embeddings import read_user_vectors
from audiograph.core.errors import ContractError
from audiograph.core.finite import check_loss
from audiograph.core.training import TrainingLoop
from audiograph.graphs.contract import read_dataset
from audiograph.semantic_ids.config import PrefixConfig
from audiograph.semantic_ids.examples import item_rows, personal_queries
from audiograph.semantic_ids.generate import GenerativeRun, load_run
from audiograph.semantic_ids.generative_train import clipped_step, sid_loss, warmup
from audiograph.semantic_ids.model_inputs import pad_batch, search_inputs
from audiograph.semantic_ids.prefix import (
    KIND,
    PREFIX_WEIGHTS,
    UserPrefix,
    backbone_digest,
    rec_token_inputs,
)

TASK_IDS = {"search": 0, "rec": 1}


def prefix_examples(
    gen: GenerativeRun,
    user_ids: pl.Series,
    tasks: tuple[str, ...],
    users_dir: str | Path = "the user vectors",
) -> dict[str, dict[str, Any]]:
    """Per task ``{"users": user rows [n], "items": item rows [n], "inputs": [n arrays]}``
    from the generative run's training data (users without a vector and items without a
    SID are left out; ``user_ids`` are those of ``users_dir``, named in errors)."""
    ds = read_dataset(gen.config["data_dir"])
    if ds.interactions is None:
        raise ContractError(f"{gen.config['data_dir']}: the prefix needs interactions")
    lut = pl.DataFrame({"user_id": user_ids, "_u": np.arange(len(user_ids), dtype=np.int64)})
    if ds.interactions.join(lut, on="user_id", how="semi").height == 0:
        raise ContractError(
            f"{users_dir}: none of its {len(user_ids):,} users has an interaction in "
            f"{gen.config['data_dir']} (the generative run's data; user vectors of another "
            "dataset?)"
        )
    out: dict[str, dict[str, Any]] = {}
    if "search" in tasks:
        if ds.queries is None or ds.queries.height == 0:
            raise ContractError(f"{gen.config['data_dir']}: personal search needs queries.parquet")
        trip = personal_queries(ds.interactions, ds.queries).join(lut, on="user_id")
        trip = trip.with_columns(_r=pl.Series(item_rows(gen.codes["item_id"], trip["item_id"])))
        trip = trip.filter(pl.col("_r") >= 0)
        max_tokens = int(gen.config["train"]["max_query_tokens"])
        out["search"] = {
            "users": trip["_u"].to_numpy(),
            "items": trip["_r"].to_numpy(),
            "inputs": search_inputs(gen.tok, gen.vocab, trip["query"].to_list(), max_tokens),
        }
    if "rec" in tasks:
        pairs = ds.interactions.select("user_id", "item_id").unique().join(lut, on="user_id")
        pairs = pairs.with_columns(_r=pl.Series(item_rows(gen.codes["item_id"], pairs["item_id"])))
        pairs = pairs.filter(pl.col("_r") >= 0).sort("_u", "_r")
        out["rec"] = {
            "users": pairs["_u"].to_numpy(),
            "items": pairs["_r"].to_numpy(),
            "inputs": rec_token_inputs(gen, pairs.height),
        }
    for task, ex in out.items():
        if len(ex["users"]) == 0:
            where = gen.config["data_dir"]
            raise ContractError(
                f"{where}: no {task} example has a user with a vector and an "
                "item with a SID (another user-vectors dir?)"
            )
    return out


def _take(ex: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    return {
        "users": ex["users"][idx],
        "items": ex["items"][idx],
        "inputs": [ex["inputs"][i] for i in idx],
    }


def hold_out(cfg: PrefixConfig, ex: dict[str, dict[str, Any]]) -> tuple[dict, dict]:
    """``(train, val)``: ``cfg.val_examples`` examples per task (at most a tenth, seeded)
    held out for the validation loss."""
    rng, train, val = np.random.default_rng([cfg.seed, 7]), {}, {}
    for task, e in ex.items():
        n_all = len(e["users"])
        n = min(cfg.val_examples, n_all // 10)
        pick = rng.choice(n_all, n, replace=False) if n else np.zeros(0, np.int64)
        keep = np.setdiff1d(np.arange(n_all), pick)
        train[task] = _take(e, keep)
        if n:
            val[task] = _take(e, np.sort(pick))
    return train, val


def _batches(cfg: PrefixConfig, ex: dict[str, dict[str, Any]], epoch: int) -> list[tuple]:
    """This epoch's ``(task, example indices)`` batches, one task per batch, shuffled."""
    rng = np.random.default_rng([cfg.seed, epoch])
    limit = {"search": cfg.search_per_epoch, "rec": cfg.rec_per_epoch}
    out = []
    for task, e in ex.items():
        n = len(e["users"])
        idx = rng.permutation(n)[: limit[task] or n]
        out += [(task, idx[i : i + cfg.batch_size]) for i in range(0, len(idx), cfg.batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def _loss(
    gen: GenerativeRun,
    prefix: UserPrefix,
    vectors: torch.Tensor,
    e: dict[str, Any],
    idx: np.ndarray,
) -> torch.Tensor:
    ids, mask = pad_batch([e["inputs"][i] for i in idx], gen.device)
    labels = torch.from_numpy(gen.sid_tokens[e["items"][idx]]).to(gen.device)
    soft = prefix(vectors[torch.from_numpy(e["users"][idx]).to(gen.device)])
    return sid_loss(gen.model, ids, mask, labels, gen.vocab, soft)


@torch.no_grad()
def _val_loss(gen, prefix, vectors, val: dict, cfg: PrefixConfig) -> dict[str, float]:  # noqa: ANN001
    prefix.eval()
    out = {}
    for task, e in val.items():
        n, total = len(e["users"]), 0.0
        for lo in range(0, n, cfg.batch_size):
            idx = np.arange(lo, min(lo + cfg.batch_size, n))
            total += float(_loss(gen, prefix, vectors, e, idx)) * len(idx)
        out[task] = total / n
    prefix.train()
    return out


def train_prefix(
    gen_dir: str | Path,
    users_dir: str | Path,
    run_dir: str | Path,
    cfg: PrefixConfig | None = None,
    *,
    resume: bool = False,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train (or resume) the user prefix of the generative run ``gen_dir`` on the user
    vectors of ``users_dir``: up to ``cfg.epochs`` epochs, stopped after ``cfg.patience``
    without a lower validation loss (``prefix.safetensors`` keeps the best epoch). The
    generative model stays frozen; ``options`` override fields of ``cfg``. Returns the
    last epoch's metrics (a resumed run with no epoch left: ``{"already_complete": True,
    "epochs": epochs trained}``)."""
    inputs = {"generative_dir": gen_dir, "users_dir": users_dir}
    loop = TrainingLoop(
        "train-prefix", KIND, run_dir, inputs, quiet=quiet, higher_is_better=False
    )  # the validation loss
    cfg = loop.open(PrefixConfig, cfg, resume, options)
    gen_dir, users_dir = loop.inputs["generative_dir"], loop.inputs["users_dir"]
    loop.advice = f"try a lower --lr (now {cfg.lr:g})"
    gen = load_run(gen_dir, cfg.device)
    gen.model.requires_grad_(False)
    user_ids, vecs, _ = read_user_vectors(users_dir)
    train, val = hold_out(cfg, prefix_examples(gen, user_ids, cfg.tasks, users_dir))
    vectors = torch.from_numpy(vecs).to(cfg.device)
    torch.manual_seed(cfg.seed)
    prefix = UserPrefix(vecs.shape[1], gen.model.config.d_model, cfg.hidden, cfg.tokens)
    prefix = prefix.to(cfg.device)
    opt = torch.optim.AdamW(prefix.parameters(), lr=cfg.lr, weight_decay=0.01)
    config = {
        "generative_dir": str(Path(gen_dir).absolute()),
        "users_dir": str(Path(users_dir).absolute()),
        "train": asdict(cfg),
        "backbone_digest": backbone_digest(gen_dir),
        "user_dim": int(vecs.shape[1]),
        "trainable_parameters": sum(p.numel() for p in prefix.parameters()),
        "examples": {t: len(e["users"]) for t, e in train.items()},
    }
    p = loop.start(config, prefix, {"optimizer": opt})
    last: dict[str, Any] = {}
    gen.model.eval()
    for epoch in loop.epochs(cfg.epochs, cfg.patience):
        prefix.train()
        t0, sums = time.perf_counter(), {t: [0.0, 0] for t in train}
        bar = tqdm(_batches(cfg, train, epoch), desc=f"prefix epoch {epoch}", disable=quiet)
        for task, idx in bar:
            warmup(opt, cfg.lr, p.step, cfg.warmup_steps)
            loss = _loss(gen, prefix, vectors, train[task], idx)
            value = check_loss(loss.item(), f"epoch {epoch}, step {p.step}", loop.advice)
            clipped_step(opt, loss, prefix.parameters())
            p.step += 1
            sums[task][0] += value * len(idx)
            sums[task][1] += len(idx)
        seconds = time.perf_counter() - t0
        n = sum(c for _, c in sums.values())
        last = {
            "epoch": epoch,
            "train_loss": sum(s for s, _ in sums.values()) / max(n, 1),
            **{f"{t}_loss": s / max(c, 1) for t, (s, c) in sums.items()},
            "examples": n,
            "seconds": round(seconds, 2),
            "examples_per_s": round(n / max(seconds, 1e-9), 1),
        }
        score = None
        if val:
            losses = _val_loss(gen, prefix, vectors, val, cfg)
            score = sum(losses.values()) / len(losses)
            last |= {f"val_{t}_loss": v for t, v in losses.items()} | {"val_loss": score}
        tail = "" if score is None else f", val loss {score:.4f}"
        line = f"loss {last['train_loss']:.4f}{tail}, {n:,} examples, {seconds:.1f}s"

        def save_prefix() -> None:
            loop.run.save_weights(prefix.state_dict(), PREFIX_WEIGHTS)

        loop.end_epoch(last, score, line, save_prefix)
    if not last:  # a resumed run with no epoch left
        return {"already_complete": True, "epochs": p.epoch}
    return last
