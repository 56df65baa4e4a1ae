"""Contrastive fine-tuning of the text bi-encoder (in-batch negatives, one shared tower).

Loss (MultipleNegativesRanking): for a batch of ``B`` text pairs ``(a_i, p_i)``, both
sides encoded by the same model with mean pooling (as :meth:`TextEncoder.encode`) and
L2-normalized,

    logits[i, j] = scale · cos(a_i, p_j)        loss = cross_entropy(logits, labels=i)

so every other positive of the batch is a negative for ``a_i``. Columns ``j != i`` that are
not real negatives (``p_j == p_i``: the same item twice; ``a_j == a_i``: the same query
with another item; ``p_j == a_i``) are masked out. With ``item_pairs`` (multi-task) every
step adds the same loss over a batch of (item text, item text) pairs to the query loss.

``OUT_DIR`` (written atomically) is a transformers model folder that
:class:`audiograph.core.text_encoder.TextEncoder` loads: ``config.json``, ``model.safetensors``,
tokenizer files, and ``manifest.json`` (``kind="bi-encoder"``: config, pair counts,
per-step losses, ``weights_sha256``). :func:`audiograph.core.text_encoder.encoder_id`
hashes only the sizes of weight files, and two fine-tunes of one base have the same folder
layout, config and weight-file size; the weights hash in ``manifest.json`` gives each its own
encoder id, hence its own text-vector cache key.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from audiograph.core.atomic import atomic_dir, write_manifest
from audiograph.core.errors import ContractError
from audiograph.core.text_encoder import default_encoder_path
from audiograph.core.training import adamw
from audiograph.semantic_ids.config import FinetuneConfig

Pairs = list[tuple[str, str]]


def mean_pool(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked mean of the last hidden states → float ``[B, hidden]`` (not normalized)."""
    hidden = model(**batch).last_hidden_state  # [B, T, H]
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def false_negatives(anchors: list[str], positives: list[str]) -> torch.Tensor:
    """bool ``[B, B]``: ``True`` at ``(i, j)``, ``j != i``, when ``p_j`` is no negative of
    ``a_i`` (``p_j == p_i``, ``a_j == a_i`` or ``p_j == a_i``)."""
    vocab: dict[str, int] = {}
    a = torch.tensor([vocab.setdefault(t, len(vocab)) for t in anchors])
    p = torch.tensor([vocab.setdefault(t, len(vocab)) for t in positives])
    same = (p[None, :] == p[:, None]) | (a[None, :] == a[:, None]) | (p[None, :] == a[:, None])
    return same & ~torch.eye(len(a), dtype=torch.bool)


def contrastive_loss(
    a: torch.Tensor, p: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """In-batch softmax loss: ``a``, ``p`` float ``[B, H]``, ``mask`` bool ``[B, B]``
    (columns to ignore per row) → scalar mean cross-entropy with labels ``0..B-1``."""
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T  # [B, B]
    logits = logits.masked_fill(mask.to(logits.device), float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(a), device=logits.device))


def finetune_bi_encoder(
    query_pairs: Pairs,
    item_pairs: Pairs | None = None,
    out_dir: str | Path = "encoder",
    base: str | Path | None = None,
    config: FinetuneConfig | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``base`` on ``(query, item text)`` pairs (+ ``(item text, item text)``
    pairs: multi-task, the two losses summed) and write the model folder ``out_dir``.

    An epoch is ``ceil(len(query_pairs) / batch_size)`` steps over shuffled query pairs
    (after the seeded ``max_pairs`` cap); item batches cycle through the shuffled item
    pairs. Same pairs, config and seed → same weights (on the same device).

    Args:
        query_pairs: ``(query, item text)`` pairs, ``P >= 2``.
        item_pairs: co-interacting ``(item text, item text)`` pairs, or ``None``.
        out_dir: output model folder (loadable by ``TextEncoder(out_dir)``).
        base: local model folder to start from (default: bundled all-MiniLM-L6-v2).
        quiet: no progress bar.

    Returns:
        the training log (also ``out_dir/manifest.json``).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    t0 = time.perf_counter()
    cfg = config or FinetuneConfig()
    _check(query_pairs, item_pairs)
    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = Path(base) if base is not None else default_encoder_path()
    if not (base / "config.json").exists():
        raise ContractError(
            f"{base}: not a local transformers model folder (no config.json);"
            " --encoder takes a local path"
        )
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout
    queries = _cap(query_pairs, cfg.max_pairs, rng)
    items = _cap(item_pairs, cfg.max_pairs, rng) if item_pairs else []
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModel.from_pretrained(base, local_files_only=True).to(cfg.device).train()

    def step_loss(batch: Pairs) -> torch.Tensor:
        left, right = [x[0] for x in batch], [x[1] for x in batch]
        tok = {"padding": True, "truncation": True, "max_length": cfg.max_length}
        a = mean_pool(model, tokenizer(left, return_tensors="pt", **tok).to(cfg.device))
        p = mean_pool(model, tokenizer(right, return_tensors="pt", **tok).to(cfg.device))
        return contrastive_loss(a, p, false_negatives(left, right), cfg.scale)

    per_epoch = math.ceil(len(queries) / cfg.batch_size)
    total = per_epoch * cfg.epochs
    opt = adamw(model.parameters(), cfg.lr, cfg.weight_decay)
    warm = max(1, round(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / (total - warm + 1))
    )
    item_batches = _cycle_batches(len(items), cfg.batch_size, rng)
    log: dict[str, list[float]] = {"query_loss": [], "item_loss": []}
    bar = tqdm(total=total, desc="fine-tune", unit="step", disable=quiet, file=sys.stderr)
    t_train, seen = time.perf_counter(), 0
    for _ in range(cfg.epochs):
        order = rng.permutation(len(queries))
        for start in range(0, len(order), cfg.batch_size):
            batch = [queries[i] for i in order[start : start + cfg.batch_size]]
            if len(batch) < 2:  # a one-pair batch has no negatives
                continue
            loss = step_loss(batch)
            log["query_loss"].append(round(loss.item(), 5))
            seen += len(batch)
            if items:
                ib = [items[i] for i in next(item_batches)]
                item_loss = step_loss(ib)
                log["item_loss"].append(round(item_loss.item(), 5))
                loss, seen = loss + item_loss, seen + len(ib)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            rate = seen / max(time.perf_counter() - t_train, 1e-9)
            bar.set_postfix(loss=f"{loss.item():.3f}", pairs_s=f"{rate:.0f}")
            bar.update()
    bar.close()
    train_s = time.perf_counter() - t_train
    manifest = {
        "kind": "bi-encoder",
        "format_version": 1,
        "base": str(base.absolute()),
        "config": asdict(cfg),
        "query_pairs": len(queries),
        "item_pairs": len(items),
        "query_pairs_given": len(query_pairs),
        "item_pairs_given": len(item_pairs or []),
        "steps": len(log["query_loss"]),
        "train_seconds": round(train_s, 3),
        "pairs_per_second": round(seen / max(train_s, 1e-9), 1),
        **log,
    }
    with atomic_dir(out_dir, "bi-encoder", [base]) as tmp:
        model.eval()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        manifest["weights_sha256"] = _weights_hash(tmp)
        write_manifest(tmp, manifest, t0)
    return manifest


def _check(query_pairs: Pairs, item_pairs: Pairs | None) -> None:
    if len(query_pairs) < 2:
        n = len(query_pairs)
        raise ContractError(f"fine-tuning needs at least 2 (query, item) pairs, got {n}")
    if item_pairs is not None and len(item_pairs) < 2:
        n = len(item_pairs)
        raise ContractError(f"multi-task fine-tuning needs at least 2 item pairs, got {n}")


def _cap(pairs: Pairs, cap: int, rng: np.random.Generator) -> Pairs:
    """At most ``cap`` of ``pairs`` (seeded sample, original order kept)."""
    if len(pairs) <= cap:
        return list(pairs)
    keep = np.sort(rng.choice(len(pairs), size=cap, replace=False))
    return [pairs[i] for i in keep]


def _cycle_batches(n: int, size: int, rng: np.random.Generator):
    """Endless batches of indices into ``n`` rows, reshuffled on every pass."""
    while n >= 2:
        order = rng.permutation(n)
        for start in range(0, n, size):
            batch = order[start : start + size]
            if len(batch) >= 2:
                yield batch


def _weights_hash(folder: Path) -> str:
    """sha256 over the folder's ``*.safetensors`` files (sorted by name)."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()
