"""Answers of a trained generative run: search (query → items) and recommendation (history
→ next items); their Recall@k is :mod:`audiograph.semantic_ids.evaluate`'s. Every answer
is a catalog item: beam search runs over the trie of the run's Semantic IDs
(:mod:`audiograph.semantic_ids.decoding`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from audiograph.core.errors import ContractError, contract_error, short_reason
from audiograph.graphs.contract import read_dataset
from audiograph.semantic_ids.assign import CODES, read_codes
from audiograph.semantic_ids.decoding import SidTrie, SidVocab, constrained_beam_search
from audiograph.semantic_ids.examples import (
    user_sequences,
)
from audiograph.semantic_ids.model_inputs import (
    load_tokenizer,
    pad_batch,
    read_run,
    rec_inputs,
    search_inputs,
)


@dataclass
class GenerativeRun:
    """A loaded run: the T5 ``model`` (eval mode), input ``tok``enizer, ``vocab``, the
    SID ``codes`` table (row = item index of every answer), their ``sid_tokens`` and
    ``trie``, and the run ``config``."""

    model: Any
    tok: Any
    vocab: SidVocab
    codes: pl.DataFrame
    sid_tokens: np.ndarray
    trie: SidTrie
    config: dict[str, Any]
    device: str


def load_run(run_dir: str | Path, device: str = "cpu") -> GenerativeRun:
    """Load ``run_dir`` (written by ``train-generative``:
    :func:`audiograph.semantic_ids.generative_train.train_generative`)."""
    from transformers import T5ForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = read_run(run_dir)
    run_dir = Path(run_dir)
    try:
        model = T5ForConditionalGeneration.from_pretrained(run_dir / "model", local_files_only=True)
    except Exception as exc:  # corrupt or foreign weights / config
        msg = f"{run_dir / 'model'}: not a loadable T5 model ({short_reason(exc)})"
        raise ContractError(msg) from None
    v = config["vocab"]
    vocab = SidVocab(int(v["text_vocab"]), tuple(v["level_sizes"]), tuple(v.get("text_ids", ())))
    codes = read_codes(run_dir / CODES)
    code_mat = np.stack(codes["codes"].to_numpy())
    if code_mat.shape[1] != vocab.length or (code_mat >= vocab.level_sizes).any():
        msg = f"do not fit the run's vocabulary ({vocab.length} codes below {vocab.level_sizes})"
        raise contract_error(str(run_dir / CODES), "codes", msg)
    tokens = vocab.tokens(code_mat)
    tok = load_tokenizer(run_dir / "tokenizer")
    # the run keeps WordPiece ids up to the largest of its text_ids (all: the tokenizer's)
    need = max(vocab.text_ids) + 1 if vocab.text_ids else vocab.text_vocab
    if tok.vocab_size < need or (not vocab.text_ids and tok.vocab_size != need):
        raise ContractError(
            f"{run_dir / 'tokenizer'}: {tok.vocab_size} tokens, but the run was trained with {need}"
        )
    return GenerativeRun(
        model.to(device).eval(), tok, vocab, codes, tokens, SidTrie(tokens), config, device
    )


def decode(
    run: GenerativeRun,
    inputs: list[np.ndarray],
    beams: int,
    batch_size: int,
    desc: str | None = None,
    prefix: torch.Tensor | None = None,
) -> list[list[int]]:
    """Top-``beams`` item rows per encoder input (``prefix [N, P, d_model]``: soft tokens
    before each input, e.g. a user's; see :mod:`audiograph.semantic_ids.prefix`)."""
    out: list[list[int]] = []
    for lo in tqdm(range(0, len(inputs), batch_size), desc=desc, disable=desc is None):
        ids, mask = pad_batch(inputs[lo : lo + batch_size], run.device)
        soft = None if prefix is None else prefix[lo : lo + batch_size].to(run.device)
        items, _ = constrained_beam_search(run.model, ids, mask, run.trie, run.vocab, beams, soft)
        out += [[i for i in row if i >= 0] for row in items.tolist()]
    return out


def top_k_excluding(ranked: list[list[int]], exclude: list[set[int]], k: int) -> list[list[int]]:
    """The first ``k`` rows of each ranked list that are not in its ``exclude`` set."""
    return [[i for i in r if i not in x][:k] for r, x in zip(ranked, exclude, strict=True)]


def widened(k: int, exclude: list[set[int]] | None, max_widen: int) -> int:
    """Beam width for ``k`` answers when up to ``max_widen`` of the excluded may surface."""
    return k + min(max((len(x) for x in exclude or []), default=0), max_widen)


def search(
    run: GenerativeRun,
    queries: list[str],
    k: int = 10,
    batch_size: int = 64,
    desc: str | None = None,
    exclude: list[set[int]] | None = None,
    max_widen: int = 100,
) -> list[list[int]]:
    """Top-``k`` item rows (of ``run.codes``) per query; ``exclude``: per query, item rows
    never to answer (e.g. the items it already names in training: the beam is widened by
    their number, at most ``max_widen``, then they are filtered out)."""
    _check_k(k)
    if any(not q.strip() for q in queries):
        raise ContractError("a search query must not be empty")
    max_tokens = int(run.config["train"]["max_query_tokens"])
    inputs = search_inputs(run.tok, run.vocab, queries, max_tokens)
    if not exclude:
        return decode(run, inputs, k, batch_size, desc)
    ranked = decode(run, inputs, widened(k, exclude, max_widen), batch_size, desc)
    return top_k_excluding(ranked, exclude, k)


def recommend(
    run: GenerativeRun,
    histories: list[np.ndarray],
    k: int = 10,
    batch_size: int = 32,
    desc: str | None = None,
    max_widen: int = 100,
) -> list[list[int]]:
    """Top-``k`` item rows per history (item rows, oldest first). The model reads the last
    ``history`` items; every history item is excluded from the answer (the beam is widened
    by the number of distinct history items, at most ``max_widen``, then they are
    filtered out)."""
    _check_k(k)
    h = int(run.config["train"]["history"])
    full = [np.asarray(x, np.int64) for x in histories]
    seen = [set(x.tolist()) for x in full]
    inputs = rec_inputs(run.vocab, run.sid_tokens, [x[-h:] for x in full])
    ranked = decode(run, inputs, widened(k, seen, max_widen), batch_size, desc)
    return top_k_excluding(ranked, seen, k)


def check_task(run_dir: str | Path, config: dict[str, Any], task: str) -> None:
    """A run (its ``config.json``: ``config``) answers only the tasks it was trained on."""
    if task not in config["train"]["tasks"]:
        raise ContractError(f"{run_dir}: the run was not trained on the {task} task")


def _check_k(k: int) -> None:
    if k < 1:
        raise ContractError(f"-k must be >= 1, got {k}")


def user_history(run: GenerativeRun, user_id: str) -> np.ndarray:
    """The last ``history`` item rows of ``user_id`` in the run's training data."""
    ds = read_dataset(run.config["data_dir"])
    if ds.interactions is None:
        raise ContractError(f"{run.config['data_dir']}: no interactions")
    inter = ds.interactions.filter(pl.col("user_id") == user_id)
    if inter.height == 0:
        raise ContractError(f"user {user_id!r} has no interactions in {run.config['data_dir']}")
    seq = user_sequences(inter, run.codes["item_id"]).seqs
    return seq[0] if seq else np.zeros(0, np.int64)
