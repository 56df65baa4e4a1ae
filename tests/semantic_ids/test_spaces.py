"""Embedding spaces of the Semantic ID stage: content vectors, contrastive fine-tuning
(determinism, effect, multi-task loss), co-interaction pairs, fusion and user errors."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.numpy import load_file

from audiograph.core.embeddings import read_embeddings
from audiograph.core.errors import ContractError
from audiograph.core.text_encoder import TextEncoder, default_encoder_path, encoder_id, item_texts
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.split import split_dataset
from audiograph.semantic_ids.finetune import FinetuneConfig, contrastive_loss, finetune_bi_encoder
from audiograph.semantic_ids.spaces import (
    build_space,
    co_interaction_pairs,
    fuse_spaces,
    svd_project,
)

ITEMS = {"music": 60, "podcast": 30, "audiobook": 10}
TINY = FinetuneConfig(epochs=2, batch_size=16, lr=1e-4, max_pairs=32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny batches gain nothing from threads; one avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def train(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spaces")
    prepare_synthetic(root / "syn", users=200, items=ITEMS, seed=0)
    split_dataset(root / "syn", root / "split")
    return root / "split" / "train"


@pytest.fixture(scope="module")
def content(train, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("content") / "emb"
    build_space("content", train, out, cache_dir=out.parent / "cache")
    return out


@pytest.fixture(scope="module")
def search(train, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("search") / "emb"
    build_space("search", train, out, TINY, cache_dir=None)
    return out


def test_content_space_is_the_text_encoder_output(train, content):
    ids, x, _ = read_embeddings(content)
    items = pl.read_parquet(train / "items.parquet")
    manifest = json.loads((content / "manifest.json").read_text())
    assert x.shape == (items.height, 384) and x.dtype == np.float32
    assert ids["item_id"].to_list() == items["item_id"].to_list()
    assert ids["row"].to_list() == list(range(items.height))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    ref = TextEncoder(None).encode(item_texts(items), progress=False)
    np.testing.assert_allclose(x, ref, atol=1e-5)
    assert manifest["kind"] == "embeddings" and manifest["space"] == "content"
    assert manifest["count"] == items.height and manifest["per_type"] == ITEMS
    assert manifest["normalized"] and manifest["sources"]["cache"]["encoded"] == items.height


def _mrr(emb_dir: Path, encoder: TextEncoder, queries: pl.DataFrame) -> float:
    """Mean reciprocal rank of each query's item among all items of ``emb_dir``."""
    ids, x, _ = read_embeddings(emb_dir)
    row = dict(zip(ids["item_id"], ids["row"], strict=True))
    scores = encoder.encode(queries["query"].to_list(), progress=False) @ x.T  # [Q, N]
    target = np.array([row[i] for i in queries["item_id"]])
    rank = (scores > scores[np.arange(len(target)), target][:, None]).sum(1) + 1
    return float((1.0 / rank).mean())


def test_search_space_ranks_query_items_higher_than_content(train, content, search):
    queries = pl.read_parquet(train / "queries.parquet")
    base = _mrr(content, TextEncoder(None), queries)
    tuned = _mrr(search, TextEncoder(search / "encoder"), queries)
    assert tuned > base + 0.05, (base, tuned)
    manifest = json.loads((search / "manifest.json").read_text())
    tune = manifest["sources"]["finetune"]
    assert manifest["space"] == "search" and manifest["config"]["max_pairs"] == 32
    assert tune["query_pairs"] == 32 and tune["item_pairs"] == 0 and tune["steps"] == 4
    assert manifest["encoder"]["path"] == str(search.absolute() / "encoder")


def _weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(folder / "model.safetensors")


def test_finetune_is_seeded_uses_both_losses_and_changes_weights(train, tmp_path):
    texts = item_texts(pl.read_parquet(train / "items.parquet"))
    qp = [(f"query {i % 5}", texts[i]) for i in range(16)]
    ip = [(texts[i], texts[i + 20]) for i in range(16)]
    logs = {
        name: finetune_bi_encoder(
            qp,
            item,
            tmp_path / name / "enc",
            None,
            replace(TINY, batch_size=4, epochs=1, max_pairs=8, seed=seed),
        )
        for name, item, seed in [("a", ip, 0), ("b", ip, 0), ("c", ip, 1), ("d", None, 0)]
    }
    wa, wb, wc, wd = (_weights(tmp_path / n / "enc") for n in "abcd")
    base = load_file(default_encoder_path() / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)  # same seed → same weights
    assert not np.array_equal(wa[key], base[key])  # training moved the weights
    assert not np.array_equal(wa[key], wc[key])  # the seed matters
    assert not np.array_equal(wa[key], wd[key])  # the item loss matters
    assert logs["a"]["steps"] == 2 and len(logs["a"]["item_loss"]) == 2
    assert logs["a"]["query_loss"] == logs["b"]["query_loss"] and not logs["d"]["item_loss"]
    assert logs["a"]["weights_sha256"] != logs["c"]["weights_sha256"]
    # same folder name, config and weight-file size, other weights → other cache key
    fa, fc = tmp_path / "a" / "enc", tmp_path / "c" / "enc"
    w = "model.safetensors"
    assert (fa / w).stat().st_size == (fc / w).stat().st_size
    assert (fa / "config.json").read_text() == (fc / "config.json").read_text()
    assert encoder_id(fa) != encoder_id(fc)


def test_contrastive_loss_masks_duplicate_items():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=-1)
    p = torch.stack([a[0], a[1], a[0]])  # item 0 twice in the batch
    mask = torch.tensor([[False, False, True], [False, False, False], [True, False, False]])
    masked = contrastive_loss(a, p, mask, 20.0)
    unmasked = contrastive_loss(a, p, torch.zeros(3, 3, dtype=torch.bool), 20.0)
    assert masked < unmasked  # the duplicate no longer counts as a negative


def test_multitask_space_and_co_interaction_pairs(train, tmp_path):
    inter = pl.read_parquet(train / "interactions.parquet")
    pairs = co_interaction_pairs(inter, 3, seed=0, data_dir=train)
    assert pairs.equals(co_interaction_pairs(inter, 3, seed=0, data_dir=train))
    assert not pairs.equals(co_interaction_pairs(inter, 3, seed=1, data_dir=train))
    assert (pairs["item_a"] != pairs["item_b"]).all()
    lo, hi = pl.min_horizontal("item_a", "item_b"), pl.max_horizontal("item_a", "item_b")
    assert not pairs.select(key=lo + "|" + hi)["key"].is_duplicated().any()
    consumed = set(inter.filter(pl.col("weight") > 0).select("user_id", "item_id").iter_rows())
    users_of: dict[str, set[str]] = {}
    for u, i in consumed:
        users_of.setdefault(i, set()).add(u)
    assert all(users_of[a] & users_of[b] for a, b in pairs.iter_rows())  # a shared user
    cfg = FinetuneConfig(batch_size=8, max_pairs=16, item_pairs_per_user=2)
    m = build_space("multitask", train, tmp_path / "mt", cfg)
    tune = m["sources"]["finetune"]
    assert m["space"] == "multitask" and m["count"] == sum(ITEMS.values())
    assert tune["item_pairs"] == 16 and tune["item_pairs_given"] > 16 and tune["steps"] == 2
    assert set(tune["loss_first_last"]) == {"query_loss", "item_loss"}
    assert (tmp_path / "mt" / "encoder" / "config.json").exists()


def _write_emb(folder: Path, ids: list[str], mat: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    np.save(folder / "embeddings.npy", mat.astype(np.float32))
    pl.DataFrame(
        {"item_id": ids, "item_type": ["t"] * len(ids), "row": np.arange(len(ids))}
    ).write_parquet(folder / "ids.parquet")
    (folder / "manifest.json").write_text(json.dumps({"kind": "embeddings"}))
    return folder


def test_fuse_aligns_by_item_id(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(40)]
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(40, 5))
    perm = rng.permutation(40)[:34]  # shuffled, 6 items missing from the second space
    da = _write_emb(tmp_path / "a", ids, a)
    db = _write_emb(tmp_path / "b", [ids[i] for i in perm], b[perm])
    m = fuse_spaces([da, db], tmp_path / "cat", "concat")
    ids_out, x, _ = read_embeddings(tmp_path / "cat")
    assert x.shape == (40, 13) and m["missing"] == [0, 6] and ids_out["item_id"].to_list() == ids
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    have = np.isin(np.arange(40), perm)
    np.testing.assert_allclose(x[have], unit(np.hstack([unit(a), unit(b)]))[have], atol=1e-5)
    np.testing.assert_allclose(x[~have, 8:], 0.0)
    np.testing.assert_allclose(x[~have, :8], unit(a)[~have], atol=1e-5)
    # svd-sum of a space with a shuffled copy of itself = its own normalized projection
    full = rng.permutation(40)
    dc = _write_emb(tmp_path / "c", [ids[i] for i in full], a[full])
    fuse_spaces([da, dc], tmp_path / "svd", "svd-sum", dim=3)
    _, y, _ = read_embeddings(tmp_path / "svd")
    proj = svd_project(a, 3)
    assert y.shape == (40, 3) and proj.shape == (40, 3)
    np.testing.assert_allclose(y, unit(proj), atol=1e-5)
    # the projection spans the top-3 right singular vectors (up to sign)
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(np.abs(proj), np.abs(u[:, :3] * s[:3]), atol=1e-4)
    fuse_spaces([da, db], tmp_path / "svd2", "svd-sum")
    _, z, _ = read_embeddings(tmp_path / "svd2")
    assert z.shape == (40, 5)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ContractError, match="--dim"):
        fuse_spaces([da, db], tmp_path / "bad", "svd-sum", dim=6)
    with pytest.raises(ContractError, match="at least 2"):
        fuse_spaces([da], tmp_path / "bad", "concat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContractError, match="not an embeddings directory"):
        fuse_spaces([da, tmp_path / "empty"], tmp_path / "bad", "concat")


def test_fine_tuned_spaces_need_queries(train, tmp_path):
    no_q = tmp_path / "noq"
    no_q.mkdir()
    for f in ("items.parquet", "interactions.parquet"):
        shutil.copy(train / f, no_q / f)
    with pytest.raises(ContractError, match="queries.parquet"):
        build_space("search", no_q, tmp_path / "out")
    with pytest.raises(ContractError, match="unknown space"):
        build_space("rec", train, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _cli(monkeypatch, *args: str) -> int:
    """Run ``audiograph ARGS`` in-process → exit code."""
    import audiograph.pipeline.cli_semantic_ids  # noqa: F401  (registers the commands)
    from audiograph.pipeline.cli import main

    monkeypatch.setattr(sys, "argv", ["audiograph", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


def test_cli_one_line_errors_and_fuse(train, tmp_path, monkeypatch, capsys):
    no_q = tmp_path / "noq"
    no_q.mkdir()
    shutil.copy(train / "items.parquet", no_q / "items.parquet")
    code = _cli(monkeypatch, "embed-space", str(no_q), "--space", "multitask", "--out", "x")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "queries.parquet" in err, err
    assert _cli(monkeypatch, "embed-space", str(no_q), "--space", "rec", "--out", "x") == 2
    assert "unknown space" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    a = _write_emb(tmp_path / "a", ["x", "y", "z"], rng.normal(size=(3, 4)))
    b = _write_emb(tmp_path / "b", ["z", "x"], rng.normal(size=(2, 3)))
    out = tmp_path / "f"
    args = ["fuse-spaces", str(a), str(b), "--out", str(out), "--method", "svd-sum", "--json"]
    assert _cli(monkeypatch, *args) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["dim"] == 3 and manifest["missing"] == [0, 1]
    assert _cli(monkeypatch, "fuse-spaces", str(a), "--out", str(out)) == 2
