"""The joint generative search + recommendation model: a T5 that decodes Semantic IDs.

Inputs are ``[SEARCH] + WordPiece(query)`` or ``[REC] + SID tokens of the last
``history`` items``; the target is the SID tokens of one item
(:mod:`audiograph.semantic_ids.decoding` has the token layout). The model is built from a
:class:`GenerativeConfig` and trained from scratch, or from a local pretrained T5 folder
(``pretrained``; its embeddings are resized to this vocabulary). The loss is cross-entropy
over the SID tokens only — the same distribution beam search ranks by.

``RUN_DIR`` (:func:`train_generative`): ``config.json`` (``kind="generative-run"``, data
and SID dirs, the config, the vocabulary), ``model/`` (a transformers T5 folder, loadable
without audiograph), ``tokenizer/`` (the WordPiece input tokenizer), ``codes.parquet``
(the SIDs it decodes), ``checkpoint.pt`` (tensors only), ``metrics.jsonl``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from audiograph.core.errors import ContractError
from audiograph.core.finite import check_loss
from audiograph.core.precision import resolve_precision
from audiograph.core.training import TrainingLoop, adamw
from audiograph.graphs.contract import read_dataset
from audiograph.semantic_ids.assign import CODES, load_semantic_ids
from audiograph.semantic_ids.config import GenerativeConfig
from audiograph.semantic_ids.decoding import SidVocab, encode, sid_logits
from audiograph.semantic_ids.examples import rec_examples, search_pairs, user_sequences
from audiograph.semantic_ids.model_inputs import (
    KIND,
    load_tokenizer,
    pack,
    pad_batch,
    query_text_ids,
    rec_inputs,
    search_inputs,
)


def build_model(cfg: GenerativeConfig, vocab: SidVocab):  # noqa: ANN201
    """``T5ForConditionalGeneration`` with ``vocab.size`` tokens (0 = pad = decoder start)."""
    from transformers import T5Config, T5ForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save_pretrained / from_pretrained bars

    torch.manual_seed(cfg.seed)
    if cfg.pretrained:
        model = T5ForConditionalGeneration.from_pretrained(cfg.pretrained, local_files_only=True)
        model.resize_token_embeddings(vocab.size)
        model.config.decoder_start_token_id = model.config.pad_token_id = 0
        return model
    conf = T5Config(
        vocab_size=vocab.size,
        d_model=cfg.d_model,
        d_kv=cfg.d_model // cfg.heads,
        d_ff=cfg.d_ff,
        num_layers=cfg.layers,
        num_decoder_layers=cfg.layers,
        num_heads=cfg.heads,
        dropout_rate=cfg.dropout,
        pad_token_id=0,
        decoder_start_token_id=0,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(conf)


def sid_loss(
    model,  # noqa: ANN001
    ids: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    vocab: SidVocab,
    prefix: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of the target SID tokens ``labels [B, L]`` over the SID tokens only
    (``prefix [B, P, d_model]``: soft tokens before the inputs, see ``encode``)."""
    start = torch.zeros_like(labels[:, :1])
    dec = torch.cat([start, labels[:, :-1]], 1)
    enc, mask = encode(model, ids, mask, prefix)
    hidden = model.get_decoder()(
        input_ids=dec, encoder_hidden_states=enc, encoder_attention_mask=mask
    ).last_hidden_state
    logits = sid_logits(model, hidden, vocab).float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), (labels - vocab.sid_base).reshape(-1)
    )


def warmup(opt: torch.optim.Optimizer, lr: float, step: int, warmup_steps: int) -> None:
    """Linear learning-rate warm-up: ``lr * min(1, (step + 1) / warmup_steps)``."""
    for group in opt.param_groups:
        group["lr"] = lr * min(1.0, (step + 1) / max(warmup_steps, 1))


def clipped_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params: Any) -> None:
    """One optimizer step on ``loss`` with the gradients' norm clipped to 1."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
    opt.step()


BUCKET = 32  # batches per window sorted by input length (less padding, still shuffled)


def length_batches(
    lengths: np.ndarray, task: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Index arrays of ``batch_size`` examples, each of one task (search inputs are short:
    no padding to rec length), in shuffled order. Within a task the examples are shuffled,
    then each window of :data:`BUCKET` batches is sorted by input length before it is cut,
    so a batch pads to nearly its own length."""
    batches = []
    for k in np.unique(task):
        idx = rng.permutation(np.flatnonzero(task == k))
        for lo in range(0, len(idx), batch_size * BUCKET):
            window = idx[lo : lo + batch_size * BUCKET]
            window = window[np.argsort(lengths[window], kind="stable")]
            batches += [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _epoch_examples(
    cfg, d: dict[str, Any], epoch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:  # noqa: ANN001
    """This epoch's ``(tokens [N, S], lengths [N], target rows [N], task ids [N], batches)``
    (:func:`pack`, :func:`length_batches`): rec examples redrawn each epoch."""
    rng = np.random.default_rng([cfg.seed, epoch])
    inputs, targets, task = [], [], []
    if "search" in cfg.tasks and len(d["s_rows"]):
        pick = np.arange(len(d["s_rows"]))
        if cfg.search_per_epoch is not None and len(pick) > cfg.search_per_epoch:
            pick = np.sort(rng.choice(len(pick), cfg.search_per_epoch, replace=False))
        inputs += [d["s_inputs"][i] for i in pick]
        targets.append(d["s_rows"][pick])
        task += [0] * len(pick)
    if "rec" in cfg.tasks:
        hist, tgt = rec_examples(d["rec"], cfg.history, rng, cfg.rec_per_epoch)
        inputs += rec_inputs(d["vocab"], d["sid_tokens"], hist)
        targets.append(tgt)
        task += [1] * len(tgt)
    task_arr = np.asarray(task, np.int64)
    tokens, lengths = pack(inputs)
    batches = length_batches(lengths, task_arr, cfg.batch_size, rng)
    targets_all = np.concatenate(targets) if targets else np.zeros(0, np.int64)
    return tokens, lengths, targets_all, task_arr, batches


def _hold_out(cfg: GenerativeConfig, d: dict[str, Any]) -> dict[str, tuple[list, np.ndarray]]:
    """Take ``cfg.val_examples`` examples per task (at most a tenth of the task's pool,
    seeded) out of the training data in ``d``: search pairs, and the last item of as many
    users' sequences (its history before it). ``{task: (inputs, target rows)}``."""
    rng, val = np.random.default_rng([cfg.seed, 7]), {}
    if cfg.val_examples == 0:
        return val
    if "search" in cfg.tasks and (n := min(cfg.val_examples, len(d["s_rows"]) // 10)) > 0:
        pick = np.sort(rng.choice(len(d["s_rows"]), n, replace=False))
        keep = np.ones(len(d["s_rows"]), bool)
        keep[pick] = False
        val["search"] = ([d["s_inputs"][i] for i in pick], d["s_rows"][pick])
        d["s_inputs"] = [x for x, k in zip(d["s_inputs"], keep, strict=True) if k]
        d["s_rows"] = d["s_rows"][keep]
    if "rec" in cfg.tasks:
        seqs = list(d["rec"].seqs)
        users = [u for u, x in enumerate(seqs) if len(x) > 2]
        if (n := min(cfg.val_examples, len(users) // 10)) > 0:
            pick = np.sort(rng.choice(users, n, replace=False))
            hist = [seqs[u][:-1][-cfg.history :] for u in pick]
            val["rec"] = (
                rec_inputs(d["vocab"], d["sid_tokens"], hist),
                np.array([seqs[u][-1] for u in pick], np.int64),
            )
            for u in pick:
                seqs[u] = seqs[u][:-1]
            d["rec"] = replace(d["rec"], seqs=seqs)
    return val


@torch.no_grad()
def _val_loss(model, val: dict, labels_all: torch.Tensor, vocab: SidVocab, cfg, device) -> dict:  # noqa: ANN001
    """Mean SID cross-entropy per task of the held-out examples (eval mode)."""
    model.eval()
    out = {}
    for task, (inputs, rows) in val.items():
        total = 0.0
        for lo in range(0, len(rows), cfg.batch_size):
            ids, mask = pad_batch(inputs[lo : lo + cfg.batch_size], device)
            labels = labels_all[rows[lo : lo + cfg.batch_size]].to(device)
            total += float(sid_loss(model, ids, mask, labels, vocab)) * len(labels)
        out[task] = total / len(rows)
    return out


def training_examples(
    cfg: GenerativeConfig, data_dir: str | Path, codes: Any, tok: Any, vocab: SidVocab | None = None
) -> tuple[SidVocab, dict[str, Any]]:
    """``(vocab, examples)`` of a run on ``data_dir`` with the SIDs ``codes``: the search
    pairs (``s_inputs``, ``s_rows``) and the users' sequences (``rec``), before
    :func:`_hold_out`. ``vocab`` (a trained run's): reuse it; none: a new one that keeps
    only the text tokens of the training queries (a 30k-row table would cost every step a
    dense gradient, its clipping and its AdamW update for rows that never train)."""
    ds = read_dataset(data_dir)
    code_mat = np.stack(codes["codes"].to_numpy())
    q, s_rows = [], np.zeros(0, np.int64)
    if "search" in cfg.tasks:
        if ds.queries is None or ds.queries.height == 0:
            raise ContractError(
                f"{data_dir}: the search task needs queries.parquet (query, item_id)"
            )
        q, s_rows, _ = search_pairs(ds.queries, codes["item_id"])
    if vocab is None:
        text_ids = query_text_ids(tok, q, cfg.max_query_tokens)
        vocab = SidVocab.for_codes(tok.vocab_size, code_mat, text_ids)
    d: dict[str, Any] = {"vocab": vocab, "sid_tokens": vocab.tokens(code_mat), "s_rows": s_rows}
    d["s_inputs"] = search_inputs(tok, vocab, q, cfg.max_query_tokens)
    if "rec" in cfg.tasks:
        if ds.interactions is None:
            raise ContractError(f"{data_dir}: the rec task needs interactions")
        d["rec"] = user_sequences(ds.interactions, codes["item_id"])
    return vocab, d


def held_out_examples(run: Any) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """The validation examples a loaded run (:class:`~.generate.GenerativeRun`) held out
    of its training, drawn again as training drew them: ``{task: (inputs, target rows)}``."""
    train = dict(run.config["train"], tasks=tuple(run.config["train"]["tasks"]))
    cfg = GenerativeConfig(**train)
    _, d = training_examples(cfg, run.config["data_dir"], run.codes, run.tok, run.vocab)
    return _hold_out(cfg, d)


def train_generative(
    data_dir: str | Path,
    sid_dir: str | Path,
    run_dir: str | Path,
    cfg: GenerativeConfig | None = None,
    *,
    resume: bool = False,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train (or resume) the generative model on the dataset ``data_dir`` (use the train
    side of ``audiograph split`` to evaluate later) with the SIDs of ``sid_dir``: up to
    ``cfg.epochs`` epochs, stopped after ``cfg.patience`` without a lower loss on the
    held-out examples (``model/`` keeps the best epoch); ``options`` override fields of
    ``cfg``. Returns the last epoch's metrics (a resumed run with no epoch left:
    ``{"already_complete": True, "epochs": epochs trained}``)."""
    inputs = {"data_dir": data_dir, "sid_dir": sid_dir}
    loop = TrainingLoop(
        "train-generative", KIND, run_dir, inputs, quiet=quiet, higher_is_better=False
    )  # the validation loss
    claims = [options.get("pretrained", (cfg or GenerativeConfig()).pretrained)]
    cfg = loop.open(GenerativeConfig, cfg, resume, options, claims)
    data_dir, sid_dir = loop.inputs["data_dir"], loop.inputs["sid_dir"]
    loop.advice = f"try a lower --lr (now {cfg.lr:g})"
    codes, _, _ = load_semantic_ids(sid_dir)
    tok = load_tokenizer()
    vocab, d = training_examples(cfg, data_dir, codes, tok)
    val = _hold_out(cfg, d)
    device = torch.device(cfg.device)
    model = build_model(cfg, vocab).to(device)
    params = list(model.parameters())
    opt = adamw(params, cfg.lr)
    precision = resolve_precision(cfg.precision, device)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
    config = {
        "data_dir": str(Path(data_dir).absolute()),
        "sid_dir": str(Path(sid_dir).absolute()),
        "train": asdict(cfg),
        "vocab": asdict(vocab),
    }

    def setup(tmp: Path) -> None:
        shutil.copyfile(Path(sid_dir) / CODES, tmp / CODES)
        tok.save_pretrained(tmp / "tokenizer")

    p = loop.start(config, model, {"optimizer": opt}, {"pretrained": cfg.pretrained}, setup)
    labels_all = torch.from_numpy(d["sid_tokens"])
    last: dict[str, Any] = {}
    for epoch in loop.epochs(cfg.epochs, cfg.patience):
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)  # dropout: resume replays the epoch
        tokens, lengths, targets, task, batches = _epoch_examples(cfg, d, epoch)
        model.train()
        t0, sums, counts = time.perf_counter(), np.zeros(2), np.zeros(2)
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=quiet)
        for b in bar:
            ids = torch.from_numpy(tokens[b, : lengths[b].max()]).to(device)
            labels = labels_all[targets[b]].to(device)
            warmup(opt, cfg.lr, p.step, cfg.warmup_steps)
            with autocast:
                loss = sid_loss(model, ids, (ids != 0).long(), labels, vocab)
            value = check_loss(loss.item(), f"epoch {epoch}, step {p.step}", loop.advice)
            clipped_step(opt, loss, params)
            p.step += 1
            t = task[b]
            sums[t[0]] += value * len(b)  # every batch holds one task
            counts[t[0]] += len(b)
            bar.set_postfix(loss=f"{sums.sum() / max(counts.sum(), 1):.3f}")
        seconds = time.perf_counter() - t0
        last = {
            "epoch": epoch,
            "train_loss": float(sums.sum() / max(counts.sum(), 1)),
            "examples": len(targets),
            "search_examples": int(counts[0]),
            "rec_examples": int(counts[1]),
            "search_loss": float(sums[0] / max(counts[0], 1)),
            "rec_loss": float(sums[1] / max(counts[1], 1)),
            "seconds": round(seconds, 2),
            "examples_per_s": round(len(targets) / max(seconds, 1e-9), 1),
        }
        score = None
        if val:
            with autocast:
                losses = _val_loss(model, val, labels_all, vocab, cfg, device)
            score = sum(losses.values()) / len(losses)
            last |= {f"val_{t}_loss": v for t, v in losses.items()} | {"val_loss": score}
        tail = "" if score is None else f", val loss {score:.4f}"
        line = f"loss {last['train_loss']:.4f}{tail}, {len(targets):,} examples, {seconds:.1f}s"

        def save_model() -> None:
            save = model.save_pretrained
            loop.run.save_folder("model", lambda to: save(to, safe_serialization=True))

        loop.end_epoch(last, score, line, save_model)
    if not last:  # a resumed run with no epoch left
        return {"already_complete": True, "epochs": p.epoch}
    return last
