"""Embedding-to-Prefix (E2P): a user's pre-computed vector as soft tokens in front of a
frozen generative model's input, and the answers it gives.

A small MLP (:class:`UserPrefix`) maps a user vector ``[user_dim]`` (the two-tower's user
tower, or the mean HGNN vector of what the user consumed:
:func:`audiograph.core.embeddings.read_user_vectors`) to ``tokens`` vectors of the model's
width, placed before the token embeddings of ``[SEARCH] + query`` (personalised search)
or of ``[REC]`` alone (recommendation from the user's tokens, no history). The generative
model is not changed: ``train-prefix`` trains the projection only.

``RUN_DIR`` (:func:`audiograph.semantic_ids.prefix_train.train_prefix`): ``config.json``
(``kind="prefix-run"``, the generative run and user vectors it reads, the config, the
backbone's weights digest), ``prefix.safetensors`` (the best epoch's projection),
``checkpoint.pt``, ``metrics.jsonl``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audiograph.core.embeddings import read_user_vectors
from audiograph.core.errors import ContractError
from audiograph.core.formats import CONFIG, peek_kind
from audiograph.core.runs import load_state, load_weights, read_run_config
from audiograph.semantic_ids.assign import CODES
from audiograph.semantic_ids.config import PrefixConfig
from audiograph.semantic_ids.generate import (
    GenerativeRun,
    check_task,
    decode,
    load_run,
    top_k_excluding,
    widened,
)
from audiograph.semantic_ids.model_inputs import search_inputs

KIND = "prefix-run"
PREFIX_WEIGHTS = "prefix.safetensors"


class UserPrefix(nn.Module):
    """``[B, user_dim]`` user vectors → ``[B, tokens, d_model]`` soft tokens (an MLP)."""

    def __init__(self, user_dim: int, d_model: int, hidden: int, tokens: int) -> None:
        super().__init__()
        self.tokens, self.d_model = tokens, d_model
        self.net = nn.Sequential(
            nn.Linear(user_dim, hidden), nn.GELU(), nn.Linear(hidden, tokens * d_model)
        )

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.net(users).view(len(users), self.tokens, self.d_model)


def backbone_digest(gen_dir: str | Path) -> str:
    """sha256 (16 hex) of the generative run's ``model/`` weights files."""
    h = hashlib.sha256()
    for f in sorted((Path(gen_dir) / "model").glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class PrefixRun:
    """A loaded prefix run: its frozen generative ``gen`` run, the ``prefix`` projection
    (eval mode), every user's ``vectors [U, user_dim]`` with ``users`` (id → row), the
    run ``config`` and its ``path``."""

    gen: GenerativeRun
    prefix: UserPrefix
    users: dict[str, int]
    vectors: torch.Tensor
    config: dict[str, Any]
    path: Path

    def check_task(self, task: str) -> None:
        """The user token answers only the tasks the prefix was trained on (``search``:
        personalised search, ``rec``: recommendation)."""
        check_task(self.path, self.config, task)

    def rows(self, user_ids: list[str]) -> np.ndarray:
        """Row of each user's vector; a user without one is a one-line error."""
        missing = [u for u in user_ids if u not in self.users]
        if missing:
            raise ContractError(f"user {missing[0]!r} has no vector in {self.config['users_dir']}")
        return np.array([self.users[u] for u in user_ids], np.int64)

    @torch.inference_mode()
    def soft_tokens(self, user_ids: list[str]) -> torch.Tensor:
        """``[len(user_ids), tokens, d_model]`` soft tokens of these users."""
        return self.prefix(self.vectors[torch.from_numpy(self.rows(user_ids))])


def load_prefix(run_dir: str | Path, device: str = "cpu") -> PrefixRun:
    """Load ``run_dir`` (``train-prefix``) with its generative run and user vectors; a
    generative run changed since the prefix was trained is a one-line error."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, KIND)
    if not (run_dir / PREFIX_WEIGHTS).is_file():
        raise ContractError(f"{run_dir}: the run has no {PREFIX_WEIGHTS} yet (train one epoch)")
    gen_dir = config["generative_dir"]
    if backbone_digest(gen_dir) != config["backbone_digest"]:
        raise ContractError(
            f"{run_dir}: the generative run {gen_dir} changed since this "
            "prefix was trained; train the prefix again"
        )
    gen = load_run(gen_dir, device)
    ids, vectors, _ = read_user_vectors(config["users_dir"])
    cfg = PrefixConfig(**{**config["train"], "device": device})
    prefix = UserPrefix(vectors.shape[1], gen.model.config.d_model, cfg.hidden, cfg.tokens)
    load_state(prefix, load_weights(run_dir / PREFIX_WEIGHTS), run_dir / PREFIX_WEIGHTS)
    users = {u: i for i, u in enumerate(ids.to_list())}
    return PrefixRun(
        gen, prefix.to(device).eval(), users, torch.from_numpy(vectors).to(device), config, run_dir
    )


def is_prefix_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is read as a prefix run (else as a generative run): its
    ``config.json`` says so or, when that cannot be read, the directory holds a prefix's
    weights or none of a generative run's files (``model/``, ``tokenizer/``, ``codes.parquet``)."""
    found = peek_kind(run_dir)
    if found is not None:
        return found["kind"] == KIND
    d = Path(run_dir)
    if not (d / CONFIG).is_file():
        return False
    generative = ("model", "tokenizer", CODES)
    return (d / PREFIX_WEIGHTS).is_file() or not any((d / f).exists() for f in generative)


def rec_token_inputs(gen: GenerativeRun, n: int) -> list[np.ndarray]:
    """``n`` inputs of the task token ``[REC]`` alone (the user's soft tokens go before)."""
    return [np.array([gen.vocab.task("rec")], np.int64)] * n


def personal_search(
    run: PrefixRun,
    user_ids: list[str],
    queries: list[str],
    k: int = 10,
    exclude: list[set[int]] | None = None,
    with_user: bool = True,
    batch_size: int = 64,
    max_widen: int = 100,
) -> list[list[int]]:
    """Top-``k`` item rows per ``(user, query)``: the user's soft tokens before
    ``[SEARCH] + query`` (``with_user=False``: the frozen model alone, same inputs
    otherwise); ``exclude``: item rows never to answer per input."""
    if any(not q.strip() for q in queries):
        raise ContractError("a search query must not be empty")
    if with_user:
        run.check_task("search")
    if not queries:
        return []
    gen = run.gen
    max_tokens = int(gen.config["train"]["max_query_tokens"])
    inputs = search_inputs(gen.tok, gen.vocab, queries, max_tokens)
    soft = run.soft_tokens(user_ids) if with_user else None
    ranked = decode(gen, inputs, widened(k, exclude, max_widen), batch_size, prefix=soft)
    return top_k_excluding(ranked, exclude or [set()] * len(ranked), k)


def recommend_for_users(
    run: PrefixRun,
    user_ids: list[str],
    k: int = 10,
    exclude: list[set[int]] | None = None,
    batch_size: int = 32,
    max_widen: int = 100,
) -> list[list[int]]:
    """Top-``k`` item rows per user from the user's soft tokens + ``[REC]`` alone (no
    history tokens); ``exclude``: per user, item rows never to answer (e.g. seen ones)."""
    run.check_task("rec")
    if not user_ids:
        return []
    soft = run.soft_tokens(user_ids)
    inputs = rec_token_inputs(run.gen, len(user_ids))
    ranked = decode(run.gen, inputs, widened(k, exclude, max_widen), batch_size, prefix=soft)
    return top_k_excluding(ranked, exclude or [set()] * len(ranked), k)


def request_tokens(run: PrefixRun, histories: list[np.ndarray]) -> dict[str, float]:
    """Encoder input tokens of one rec request: ``user_token`` (soft tokens + ``[REC]``)
    and ``history`` (``[REC]`` + the SIDs of the last ``history`` items; mean over
    ``histories``, 0 without any)."""
    n = int(run.gen.config["train"]["history"])
    per = [1 + min(len(h), n) * run.gen.vocab.length for h in histories]
    return {
        "user_token": int(run.config["train"]["tokens"]) + 1,
        "history": float(np.mean(per)) if per else 0.0,
    }
