"""The generative model's inputs and its run directory, shared by training
(:mod:`.generative_train`) and inference (:mod:`.generate`), so that inference never imports the
trainer.

Inputs are ``[SEARCH] + WordPiece(query)`` or ``[REC] + SID tokens of the last
``history`` items`` (:mod:`audiograph.semantic_ids.decoding` has the token layout).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiograph.core.errors import ContractError, short_reason
from audiograph.core.runs import read_run_config
from audiograph.core.text_encoder import default_encoder_path
from audiograph.semantic_ids.decoding import SidVocab

KIND = "generative-run"


def load_tokenizer(path: str | Path | None = None):  # noqa: ANN201 (transformers type)
    """The WordPiece input tokenizer (default: the bundled MiniLM's). A missing folder, a
    JSON file in it that does not parse, or files transformers cannot load are a one-line
    error naming the folder (or the file)."""
    from transformers import AutoTokenizer

    folder = Path(path or default_encoder_path())
    if not folder.is_dir():
        raise ContractError(f"{folder}: no tokenizer folder")
    for f in sorted(folder.glob("*.json")):
        try:
            json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise ContractError(
                f"{f}: not a readable tokenizer file ({short_reason(exc)})"
            ) from None
    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers / tokenizers raise many kinds
        msg = f"{folder}: not a loadable tokenizer ({short_reason(exc)})"
        raise ContractError(msg) from None


def query_text_ids(tok, queries: list[str], max_tokens: int) -> tuple[int, ...]:  # noqa: ANN001
    """The sorted WordPiece ids of ``queries`` (as :func:`search_inputs` cuts them), with
    [PAD] (0) and [UNK]: the text tokens a run trained on these queries keeps."""
    used = {0, int(tok.unk_token_id)}
    uniq = list(dict.fromkeys(queries))
    if uniq:
        ids = tok(uniq, add_special_tokens=False, truncation=True, max_length=max_tokens - 1)
        for row in ids["input_ids"]:
            used.update(row)
    return tuple(sorted(used))


def search_inputs(tok, vocab: SidVocab, queries: list[str], max_tokens: int) -> list[np.ndarray]:  # noqa: ANN001
    """``[SEARCH] + the query's text tokens`` per query (at most ``max_tokens`` in all)."""
    uniq = list(dict.fromkeys(queries))
    if not uniq:
        return []
    ids = tok(uniq, add_special_tokens=False, truncation=True, max_length=max_tokens - 1)
    unk = int(tok.unk_token_id)
    enc = {
        q: np.concatenate([[vocab.task("search")], vocab.text_tokens(i, unk)]).astype(np.int64)
        for q, i in zip(uniq, ids["input_ids"], strict=True)
    }
    return [enc[q] for q in queries]


def rec_inputs(
    vocab: SidVocab, sid_tokens: np.ndarray, histories: list[np.ndarray]
) -> list[np.ndarray]:
    """``[REC] + the SID tokens of each history item`` (``sid_tokens`` ``[N, L]``)."""
    task = np.array([vocab.task("rec")], np.int64)
    return [np.concatenate([task, sid_tokens[h].ravel()]) for h in histories]


def pad_batch(
    seqs: list[np.ndarray], device: str | torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with 0 → ``(input_ids [B, S], attention_mask [B, S])``."""
    n = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), n), np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    t = torch.from_numpy(ids).to(device)
    return t, (t != 0).long()


def pack(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad every sequence at once → ``(tokens [N, S] int64, lengths [N])``, ``S`` the
    longest; a batch is then ``tokens[rows, : lengths[rows].max()]`` (no per-example work
    in the training loop)."""
    lengths = np.fromiter((len(x) for x in seqs), np.int64, len(seqs))
    tokens = np.zeros((len(seqs), int(lengths.max(initial=1))), np.int64)
    if len(seqs):
        flat = np.concatenate(seqs)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        tokens[np.repeat(np.arange(len(seqs)), lengths), np.arange(len(flat)) - starts] = flat
    return tokens, lengths


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.json`` (validated)."""
    config = read_run_config(run_dir, KIND)
    if not (Path(run_dir) / "model").is_dir():
        raise ContractError(f"{run_dir}: the run has no model/ yet (train at least one epoch)")
    return config
