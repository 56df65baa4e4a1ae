"""Token layout of the generative model, the trie of valid Semantic IDs and constrained
beam search over it.

One vocabulary serves encoder and decoder (T5 ties them)::

    [0, text_vocab)                      input WordPiece tokens (0 = [PAD] = decoder start)
    text_vocab + 0 / + 1                 task prefixes [SEARCH] / [REC]
    sid_base + offset[l] + code          Semantic ID token of (level l, code)

so a rec input (the history's SIDs) and every decoder output use the same SID tokens.
Beam search only ever extends a beam with a child of its prefix in :class:`SidTrie`, so
every finished beam is a catalog item, and no item appears twice in one answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from audiograph.core.ranking import top_k

SEARCH, REC = 0, 1  # task prefix offsets after the text vocabulary
N_TASKS = 2


@dataclass(frozen=True)
class SidVocab:
    """Token ids of a run: ``text_vocab`` input text tokens, 2 task tokens, then the SID
    tokens of ``level_sizes`` (codes per position of an ID, the last one the
    disambiguation code).

    ``text_ids``: the WordPiece ids the run keeps, sorted — input token ``i`` is WordPiece
    id ``text_ids[i]`` (those of its training queries, [PAD] = 0 and [UNK]), so the
    embedding table holds only tokens that can train; empty: every WordPiece id as is
    (``text_vocab`` = the tokenizer's size)."""

    text_vocab: int
    level_sizes: tuple[int, ...]
    text_ids: tuple[int, ...] = ()

    @property
    def sid_base(self) -> int:
        return self.text_vocab + N_TASKS

    @property
    def offsets(self) -> np.ndarray:
        """``[L]`` first token id of each level."""
        return self.sid_base + np.concatenate([[0], np.cumsum(self.level_sizes)[:-1]])

    @property
    def size(self) -> int:
        return self.sid_base + int(sum(self.level_sizes))

    @property
    def length(self) -> int:
        """Tokens per Semantic ID."""
        return len(self.level_sizes)

    def task(self, name: str) -> int:
        return self.text_vocab + {"search": SEARCH, "rec": REC}[name]

    def tokens(self, codes: np.ndarray) -> np.ndarray:
        """``codes`` int ``[N, L]`` → token ids int64 ``[N, L]``."""
        return (np.asarray(codes, np.int64) + self.offsets[None, :]).astype(np.int64)

    def text_tokens(self, wordpiece: np.ndarray, unk: int) -> np.ndarray:
        """WordPiece ids ``[n]`` → this run's input token ids ``[n]`` (an id the run does
        not keep becomes its [UNK], WordPiece id ``unk``)."""
        w = np.asarray(wordpiece, np.int64)
        if not self.text_ids:
            return w
        kept = np.asarray(self.text_ids, np.int64)
        pos = np.searchsorted(kept, w).clip(max=len(kept) - 1)
        return np.where(kept[pos] == w, pos, np.searchsorted(kept, unk)).astype(np.int64)

    @classmethod
    def for_codes(
        cls, text_vocab: int, codes: np.ndarray, text_ids: tuple[int, ...] = ()
    ) -> SidVocab:
        """Vocabulary sized by the largest code used at each level of ``codes [N, L]``;
        with ``text_ids`` (sorted WordPiece ids), only those text tokens."""
        sizes = tuple(int(c) + 1 for c in np.asarray(codes).max(0))
        text_ids = tuple(int(i) for i in text_ids)
        return cls(len(text_ids) if text_ids else text_vocab, sizes, text_ids)


class SidTrie:
    """Prefix tree of the catalog's SID token tuples ``tokens`` int ``[N, L]`` (unique
    rows). ``children[t]`` maps a prefix of length ``t`` to the sorted token ids that may
    follow it; ``item`` maps a full tuple to its row in ``tokens``."""

    def __init__(self, tokens: np.ndarray) -> None:
        tokens = np.asarray(tokens, np.int64)
        self.length = tokens.shape[1]
        rows = [tuple(r) for r in tokens.tolist()]
        self.item = {r: i for i, r in enumerate(rows)}
        if len(self.item) != len(rows):
            raise ValueError("Semantic IDs must be unique (run the disambiguation step)")
        self.children: list[dict[tuple[int, ...], torch.Tensor]] = []
        for t in range(self.length):
            nxt: dict[tuple[int, ...], set[int]] = {}
            for r in rows:
                nxt.setdefault(r[:t], set()).add(r[t])
            self.children.append({p: torch.tensor(sorted(s)) for p, s in nxt.items()})


def sid_logits(model: nn.Module, hidden: torch.Tensor, vocab: SidVocab) -> torch.Tensor:
    """Logits ``[..., n_sid_tokens]`` of decoder states ``hidden [..., d_model]`` over the
    SID tokens only (T5's LM head restricted to those rows: no 30k-way text softmax)."""
    w = model.get_output_embeddings().weight[vocab.sid_base : vocab.size]
    conf = model.config  # T5 rescales the decoder output when the head is tied
    if getattr(conf, "scale_decoder_outputs", conf.tie_word_embeddings):
        hidden = hidden * conf.d_model**-0.5
    return hidden @ w.t()


def encode(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prefix: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder states ``[B, P + S, d_model]`` and their mask ``[B, P + S]`` of the tokens
    ``input_ids [B, S]``, with ``prefix [B, P, d_model]`` (soft tokens, e.g. a user's)
    placed before their embeddings when given (``P = 0`` otherwise)."""
    if prefix is None:
        out = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state, attention_mask
    tokens = model.get_input_embeddings()(input_ids)
    embeds = torch.cat([prefix.to(tokens.dtype), tokens], 1)
    mask = torch.cat([attention_mask.new_ones(prefix.shape[:2]), attention_mask], 1)
    out = model.get_encoder()(inputs_embeds=embeds, attention_mask=mask)
    return out.last_hidden_state, mask


@torch.inference_mode()
def constrained_beam_search(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    trie: SidTrie,
    vocab: SidVocab,
    beams: int,
    prefix: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``beams`` catalog items per input by beam search over the SID trie.

    Args:
        model: a transformers encoder-decoder (``T5ForConditionalGeneration``).
        input_ids, attention_mask: ``[B, S]`` encoder inputs.
        trie: valid SIDs (token tuples); vocab: the run's token layout.
        beams: beam width = answers per input.
        prefix: ``[B, P, d_model]`` soft tokens before the inputs (see :func:`encode`).

    Returns:
        ``(items [B, beams] int64, scores [B, beams] float32)``: rows of the trie's
        catalog in descending log-probability; ``-1`` / ``-inf`` where fewer than
        ``beams`` valid items exist.
    """
    device = input_ids.device
    b = input_ids.shape[0]
    lo, hi = vocab.sid_base, vocab.size
    enc, mask = encode(model, input_ids, attention_mask, prefix)
    hidden = enc.repeat_interleave(beams, 0)
    mask = mask.repeat_interleave(beams, 0)
    start = model.config.decoder_start_token_id
    seqs = torch.full((b * beams, 1), start, dtype=torch.long, device=device)
    score = torch.full((b, beams), -torch.inf, device=device)
    score[:, 0] = 0.0  # one live beam per input at the start
    for t in range(trie.length):
        dec = model.get_decoder()(
            input_ids=seqs, encoder_hidden_states=hidden, encoder_attention_mask=mask
        ).last_hidden_state[:, -1]
        logp = torch.log_softmax(sid_logits(model, dec, vocab).float(), -1)
        allowed = torch.full_like(logp, -torch.inf)
        for r, prefix in enumerate(seqs[:, 1:].tolist()):
            kids = trie.children[t].get(tuple(prefix))
            if kids is not None:
                allowed[r, kids.to(device) - lo] = 0.0
        total = (score.view(-1, 1) + logp + allowed).view(b, -1)  # [B, beams * V]
        score, flat = top_k(total, beams)  # ties: the lower parent beam, then token
        parent = flat // (hi - lo) + torch.arange(b, device=device)[:, None] * beams
        token = flat % (hi - lo) + lo
        seqs = torch.cat([seqs[parent.view(-1)], token.view(-1, 1)], 1)
    items = torch.tensor(
        [trie.item.get(tuple(s), -1) for s in seqs[:, 1:].tolist()], device=device
    ).view(b, beams)
    items[~torch.isfinite(score)] = -1
    return items, score
