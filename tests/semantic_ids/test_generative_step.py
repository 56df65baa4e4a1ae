"""The generative training step's inputs: packed once per epoch, batched by length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiograph.core.errors import ContractError
from audiograph.semantic_ids.config import GenerativeConfig
from audiograph.semantic_ids.generative_train import length_batches
from audiograph.semantic_ids.model_inputs import pack, pad_batch


def test_pack_pads_every_sequence_like_pad_batch():
    seqs = [np.array([5, 6, 7]), np.array([9]), np.array([1, 2, 3, 4, 8])]
    tokens, lengths = pack(seqs)
    assert tokens.tolist() == [[5, 6, 7, 0, 0], [9, 0, 0, 0, 0], [1, 2, 3, 4, 8]]
    assert lengths.tolist() == [3, 1, 5]
    rows = np.array([0, 1])
    ids, mask = pad_batch([seqs[i] for i in rows], "cpu")
    got = torch.from_numpy(tokens[rows, : lengths[rows].max()])
    assert torch.equal(got, ids) and torch.equal((got != 0).long(), mask)
    empty, n = pack([])
    assert empty.shape == (0, 1) and n.shape == (0,)


def test_length_batches_cover_each_example_once_one_task_per_batch():
    rng = np.random.default_rng(0)
    n, size = 2000, 16
    lengths = rng.integers(1, 40, n)
    task = (np.arange(n) % 3 == 0).astype(np.int64)
    batches = length_batches(lengths, task, size, np.random.default_rng(5))
    flat = np.concatenate(batches)
    assert np.array_equal(np.sort(flat), np.arange(n))  # every example exactly once
    assert all(len(np.unique(task[b])) == 1 for b in batches)
    assert all(len(b) <= size for b in batches)
    # less padding than batches of shuffled examples, since each window is length-sorted
    pad = sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)
    perm = np.random.default_rng(5).permutation(n)
    shuffled = [perm[i : i + size] for i in range(0, n, size)]
    pad_shuffled = sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in shuffled)
    assert pad < pad_shuffled / 4
    again = length_batches(lengths, task, size, np.random.default_rng(5))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))  # seeded


def test_precision_is_checked():
    GenerativeConfig(precision="bf16").validate()
    with pytest.raises(ContractError, match="--precision must be one of auto"):
        GenerativeConfig(precision="fp16").validate()


def test_vocab_keeps_only_the_query_tokens():
    from audiograph.semantic_ids.decoding import SidVocab
    from audiograph.semantic_ids.model_inputs import load_tokenizer, query_text_ids, search_inputs

    tok = load_tokenizer()
    queries = ["indie rock", "rock", "female vocalists"]
    kept = query_text_ids(tok, queries, 24)
    words = tok(queries, add_special_tokens=False)["input_ids"]
    assert set(kept) == {0, tok.unk_token_id} | {i for w in words for i in w}
    assert list(kept) == sorted(kept)
    codes = np.array([[0, 1], [1, 0]])
    vocab = SidVocab.for_codes(tok.vocab_size, codes, kept)
    assert vocab.text_vocab == len(kept) and vocab.sid_base == len(kept) + 2
    (rock,) = tok(["rock"], add_special_tokens=False)["input_ids"]
    got = search_inputs(tok, vocab, ["rock", "jazz"], 24)
    assert got[0].tolist() == [vocab.task("search"), kept.index(rock[0])]
    assert got[1].tolist() == [vocab.task("search"), kept.index(tok.unk_token_id)]  # unseen
    full = SidVocab.for_codes(tok.vocab_size, codes)  # a run without text_ids: ids as is
    assert full.text_vocab == tok.vocab_size
    assert search_inputs(tok, full, ["rock"], 24)[0].tolist() == [full.task("search"), *rock]
