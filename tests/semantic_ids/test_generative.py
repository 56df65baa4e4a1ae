"""The generative model: constrained decoding stays in the catalog, a tiny model overfits a
tiny catalog on both tasks, resume equals an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from tiny_t5 import TINY_T5

from audiograph.core.errors import ContractError
from audiograph.graphs.contract import write_dataset
from audiograph.semantic_ids import generative_train as generative
from audiograph.semantic_ids.decoding import SidTrie, SidVocab, constrained_beam_search
from audiograph.semantic_ids.examples import user_sequences
from audiograph.semantic_ids.generate import load_run, recommend, search
from audiograph.semantic_ids.generative_train import GenerativeConfig, build_model, train_generative

N = 30  # items


def query(i: int) -> str:
    return f"song number {i} " + ["red", "blue", "green"][i % 3]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, random_sids) -> dict[str, Path]:
    """30 items, one unique query each; user u listened to u, u+1, u+2 (mod 30) in order;
    random item vectors tokenized into 2 x 4 codes (+ disambiguation)."""
    root = tmp_path_factory.mktemp("gen")
    ids = [f"i{i}" for i in range(N)]
    items = pl.DataFrame(
        {"item_id": ids, "item_type": ["music"] * N, "title": [f"title {i}" for i in range(N)]}
    )
    rows = [
        (f"u{u}", ids[(u + j) % N], 1.0, "stream", 1000 + j) for u in range(N) for j in range(3)
    ]
    inter = pl.DataFrame(
        rows, schema=["user_id", "item_id", "weight", "signal", "ts"], orient="row"
    )
    queries = pl.DataFrame({"query": [query(i) for i in range(N)], "item_id": ids})
    (root / "data").mkdir()
    write_dataset(root / "data", items, inter, None, queries)
    random_sids(root, ids)
    return {"root": root, "data": root / "data", "sid": root / "sid"}


def test_constrained_decoding_only_emits_catalog_items():
    rng = np.random.default_rng(1)
    codes = np.unique(rng.integers(0, 5, size=(40, 3)), axis=0)  # ~40 distinct 3-code IDs
    vocab = SidVocab.for_codes(50, codes)
    tokens = vocab.tokens(codes)
    trie = SidTrie(tokens)
    model = build_model(GenerativeConfig(d_model=32, d_ff=64, layers=1, heads=2), vocab).eval()
    ids = torch.from_numpy(rng.integers(1, 52, size=(6, 7)))
    beams = len(codes) + 5  # more beams than items: the tail must be padding, not junk
    items, scores = constrained_beam_search(model, ids, torch.ones_like(ids), trie, vocab, beams)
    assert items.shape == (6, beams)
    for row, sc in zip(items.tolist(), scores.tolist(), strict=True):
        valid = [i for i in row if i >= 0]
        assert sorted(valid) == list(range(len(codes)))  # every item exactly once
        assert row[len(codes) :] == [-1] * 5
        finite = sc[: len(codes)]
        assert all(a >= b for a, b in zip(finite, finite[1:], strict=False))  # ranked
    with pytest.raises(ValueError, match="unique"):
        SidTrie(np.vstack([tokens, tokens[:1]]))


def test_beam_ties_follow_the_one_list_rule(monkeypatch):
    """With every SID logit equal, every beam ties: the answer is the catalog in the
    order of its token tuples (ties go to the lower parent beam, then the lower token, as
    ``core.ranking.top_k`` breaks them), the same on every call."""
    import audiograph.semantic_ids.decoding as decoding

    codes = np.array([[2, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]])
    vocab = SidVocab.for_codes(50, codes)
    trie = SidTrie(vocab.tokens(codes))
    model = build_model(GenerativeConfig(d_model=32, d_ff=64, layers=1, heads=2), vocab).eval()

    def flat(model, hidden, vocab):
        return hidden.new_zeros(*hidden.shape[:-1], vocab.size - vocab.sid_base)

    monkeypatch.setattr(decoding, "sid_logits", flat)
    ids = torch.tensor([[3, 4, 5], [9, 8, 7]])
    items, _ = constrained_beam_search(model, ids, torch.ones_like(ids), trie, vocab, 5)
    lexicographic = sorted(range(len(codes)), key=lambda i: tuple(codes[i]))
    assert items.tolist() == [lexicographic, lexicographic]


def test_tiny_model_overfits_both_tasks(tiny, tmp_path):
    last = train_generative(tiny["data"], tiny["sid"], tmp_path / "run", TINY_T5, quiet=True)
    assert last["search_examples"] == N and last["rec_examples"] == 2 * N
    run = load_run(tmp_path / "run")
    row = {v: i for i, v in enumerate(run.codes["item_id"].to_list())}
    got = search(run, [query(i) for i in range(N)], k=10)
    assert np.mean([row[f"i{i}"] in g for i, g in enumerate(got)]) == 1.0
    assert np.mean([g[0] == row[f"i{i}"] for i, g in enumerate(got)]) >= 0.9
    # excluded rows never come back; the widened beam still fills k answers
    first = [{g[0]} for g in got]
    again = search(run, [query(i) for i in range(N)], k=10, exclude=first)
    assert all(len(a) == 10 and not set(a) & x for a, x in zip(again, first, strict=True))
    wide = search(run, [query(i) for i in range(N)], k=11)  # the beam it was widened to
    assert again == [[r for r in w if r not in x][:10] for w, x in zip(wide, first, strict=True)]
    # history (u, u+1) -> u+2 and (u) -> u+1
    hist = [np.array([row[f"i{u}"], row[f"i{(u + 1) % N}"]]) for u in range(N)]
    rec = recommend(run, hist, k=10)
    assert np.mean([row[f"i{(u + 2) % N}"] in r for u, r in enumerate(rec)]) == 1.0
    assert all(not set(h.tolist()) & set(r) for h, r in zip(hist, rec, strict=True))


def test_resume_equals_uninterrupted(tiny, tmp_path):
    cfg = GenerativeConfig(**{**TINY_T5.__dict__, "epochs": 2, "dropout": 0.1})
    train_generative(tiny["data"], tiny["sid"], tmp_path / "a", cfg, quiet=True)
    cfg1 = GenerativeConfig(**{**cfg.__dict__, "epochs": 1})
    train_generative(tiny["data"], tiny["sid"], tmp_path / "b", cfg1, quiet=True)
    train_generative(None, None, tmp_path / "b", cfg, resume=True, quiet=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ContractError, match="already holds a run"):
        train_generative(tiny["data"], tiny["sid"], tmp_path / "a", cfg, quiet=True)


def test_validation_plateau_stops_and_keeps_the_best_epoch(tiny, tmp_path):
    """3 search + 3 rec examples held out (a tenth of each pool); the run stops after
    ``patience`` epochs without a lower validation loss and ``model/`` is the best epoch's."""
    from safetensors.torch import load_file

    cfg = GenerativeConfig(
        **{**TINY_T5.__dict__, "epochs": 12, "lr": 3e-2, "val_examples": 1000, "patience": 2}
    )
    last = train_generative(tiny["data"], tiny["sid"], tmp_path / "r", cfg, quiet=True)
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows]
    assert all(set(r) >= {"val_search_loss", "val_rec_loss"} for r in rows)
    best = int(np.argmin(val))
    stopped = len(rows) < cfg.epochs
    assert not stopped or (len(rows) == best + 1 + cfg.patience), val
    assert last["epoch"] == len(rows) - 1
    saved = load_file(str(tmp_path / "r" / "model" / "model.safetensors"))
    final = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["model"]
    same = all(torch.equal(saved[k], final[k]) for k in saved if k in final)
    assert same == (best == len(rows) - 1)


def test_rec_order_and_bad_input(tiny, tmp_path):
    inter = pl.DataFrame(
        {
            "user_id": ["a"] * 3,
            "item_id": ["x", "y", "z"],
            "weight": [5.0, 1.0, 3.0],
            "ts": [None, None, None],
        },
        schema_overrides={"ts": pl.Int64},
    )
    seqs = user_sequences(inter, pl.Series(["z", "y", "x"]))
    assert not seqs.chronological and seqs.seqs[0].tolist() == [
        1,
        0,
        2,
    ]  # y, z, x: weight ascending
    no_queries = tmp_path / "nq"
    no_queries.mkdir()
    write_dataset(
        no_queries,
        pl.read_parquet(tiny["data"] / "items.parquet"),
        pl.read_parquet(tiny["data"] / "interactions.parquet"),
    )
    with pytest.raises(ContractError, match="queries"):
        train_generative(no_queries, tiny["sid"], tmp_path / "r", TINY_T5, quiet=True)


def files(run: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in run.iterdir() if f.is_file()}


def test_a_failed_resume_changes_no_file(tiny, tmp_path):
    cfg = GenerativeConfig(**{**TINY_T5.__dict__, "epochs": 2})
    train_generative(tiny["data"], tiny["sid"], tmp_path / "a", cfg, quiet=True)
    cfg1 = GenerativeConfig(**{**cfg.__dict__, "epochs": 1})
    train_generative(tiny["data"], tiny["sid"], tmp_path / "b", cfg1, quiet=True)
    (tmp_path / "a" / "checkpoint.pt").write_bytes((tmp_path / "b" / "checkpoint.pt").read_bytes())
    before = files(tmp_path / "a")
    cfg3 = GenerativeConfig(**{**cfg.__dict__, "epochs": 3})
    with pytest.raises(ContractError, match="belongs to another run"):
        train_generative(None, None, tmp_path / "a", cfg3, resume=True, quiet=True)
    assert files(tmp_path / "a") == before


def test_a_non_finite_loss_stops_the_run_and_keeps_its_last_checkpoint(
    tiny, tmp_path, nan_on_second_call
):
    cfg = GenerativeConfig(**{**TINY_T5.__dict__, "epochs": 1})
    train_generative(tiny["data"], tiny["sid"], tmp_path / "r", cfg, quiet=True)
    before = files(tmp_path / "r")
    nan_on_second_call(generative, "sid_loss")
    cfg2 = GenerativeConfig(**{**cfg.__dict__, "epochs": 2})
    with pytest.raises(ContractError) as err:
        train_generative(None, None, tmp_path / "r", cfg2, resume=True, quiet=True)
    msg = str(err.value)
    assert "\n" not in msg and "training diverged" in msg and "lower --lr" in msg, msg
    assert "epoch 1, step " in msg
    assert files(tmp_path / "r") == before


def test_held_out_examples_are_drawn_again_as_training_drew_them(tiny, tmp_path, monkeypatch):
    """``held_out_examples`` of a trained run returns the validation examples its training
    held out (spied on): 3 search pairs and 3 users' last items (a tenth of 30 each)."""
    from dataclasses import replace

    seen = {}
    hold_out = generative._hold_out

    def spy(cfg, d):
        seen["val"] = hold_out(cfg, d)
        return seen["val"]

    monkeypatch.setattr(generative, "_hold_out", spy)
    cfg = replace(TINY_T5, epochs=1, val_examples=5)
    train_generative(tiny["data"], tiny["sid"], tmp_path / "run", cfg, quiet=True)
    monkeypatch.setattr(generative, "_hold_out", hold_out)
    again = generative.held_out_examples(load_run(tmp_path / "run"))
    assert set(again) == set(seen["val"]) == {"search", "rec"}
    for task, (inputs, rows) in again.items():
        want_inputs, want_rows = seen["val"][task]
        assert len(rows) == 3 and rows.tolist() == want_rows.tolist()
        assert [x.tolist() for x in inputs] == [x.tolist() for x in want_inputs]
