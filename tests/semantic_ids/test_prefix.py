"""The user prefix (Embedding-to-Prefix): personal search triples and targets, user vectors,
a prefix that personalises a frozen model it never changes, resume, the CLI and runner."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from tiny_t5 import TINY_T5

from audiograph.core.embeddings import read_user_vectors
from audiograph.core.errors import ContractError
from audiograph.graphs.contract import INTERACTION_SCHEMA, write_dataset
from audiograph.hgnn.user_means import export_user_means, user_means
from audiograph.pipeline.cli import main
from audiograph.semantic_ids import prefix_train
from audiograph.semantic_ids.config import PrefixConfig
from audiograph.semantic_ids.examples import personal_eval_targets, personal_queries
from audiograph.semantic_ids.generate import load_run
from audiograph.semantic_ids.generative_train import train_generative
from audiograph.semantic_ids.prefix import (
    PREFIX_WEIGHTS,
    load_prefix,
    personal_search,
    recommend_for_users,
)
from audiograph.semantic_ids.prefix_train import train_prefix

N, USERS = 30, 10  # items i0..i29 coloured i % 3; user u has items 3u, 3u+1, 3u+2
COLOURS = ("red", "blue", "green")
BACKBONE = replace(TINY_T5, history=3, epochs=40)
# two soft tokens: with one, the top-1 below was 0.67-0.77 under transformers 5.25 (>= 0.8
# before); with two it is 0.97-1.0, and the parameter count checks the tokens' width
PREFIX = PrefixConfig(
    hidden=64, tokens=2, batch_size=16, lr=3e-3, warmup_steps=5, epochs=200, val_examples=0
)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, random_sids) -> dict[str, Path]:
    """A colour query names 10 items; each user tags its 3 items with their colours, so
    only the user tells which red item a user's "red" means. A backbone trained on the
    colour queries and histories, and random user vectors."""
    root = tmp_path_factory.mktemp("prefix")
    ids = [f"i{i}" for i in range(N)]
    items = pl.DataFrame(
        {"item_id": ids, "item_type": ["music"] * N, "title": [f"title {i}" for i in range(N)]}
    )
    rows = [
        (f"u{u}", f"i{3 * u + j}", 1.0, "stream", 1000 + j, [COLOURS[(3 * u + j) % 3]])
        for u in range(USERS)
        for j in range(3)
    ]
    inter = pl.DataFrame(
        rows,
        schema={**INTERACTION_SCHEMA, "tags": pl.List(pl.Utf8)},
        orient="row",
    )
    queries = pl.DataFrame({"query": [COLOURS[i % 3] for i in range(N)], "item_id": ids})
    (root / "data").mkdir()
    write_dataset(root / "data", items, inter, None, queries)
    emb, _ = random_sids(root, ids)
    train_generative(root / "data", root / "sid", root / "gen", BACKBONE, quiet=True)
    export_user_means(emb, root / "data", root / "users", weighted=False)
    return {
        "root": root,
        "data": root / "data",
        "gen": root / "gen",
        "users": root / "users",
        "emb": emb,
    }


def test_personal_queries_from_user_tags_or_from_consumed_query_items():
    inter = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "b"],
            "item_id": ["x", "y", "x", "z"],
            "tags": [["rock", "odd"], None, ["rock", "pop"], []],
        }
    )
    queries = pl.DataFrame({"query": ["rock", "pop", "jazz"], "item_id": ["x", "z", "y"]})
    got = personal_queries(inter, queries).rows()
    # tags users gave, only known query strings ("odd" is none), whatever the queries' items
    assert got == [("a", "rock", "x"), ("b", "pop", "x"), ("b", "rock", "x")]
    plain = personal_queries(inter.drop("tags"), queries).rows()
    assert plain == [("a", "jazz", "y"), ("a", "rock", "x"), ("b", "pop", "z"), ("b", "rock", "x")]


def test_personal_eval_targets_are_new_triples_with_the_users_train_items_excluded():
    cols = ["user_id", "query", "item_id"]
    train = pl.DataFrame(
        [("a", "rock", "x"), ("a", "rock", "y"), ("b", "pop", "x")], schema=cols, orient="row"
    )
    rows = [
        ("a", "rock", "x"),
        ("a", "rock", "z"),
        ("b", "pop", "y"),
        ("b", "pop", "gone"),
        ("c", "rock", "x"),
    ]
    test = pl.DataFrame(rows, schema=cols, orient="row")
    sid_items = pl.Series(["x", "y", "z"])  # rows 0, 1, 2; "gone" has no SID
    users, qs, rel, excl = personal_eval_targets(train, test, sid_items)
    assert (users, qs) == (["a", "b", "c"], ["rock", "pop", "rock"])
    assert rel == [{2}, {1}, {0}]  # (a, rock, x) is a train triple: not relevant
    assert excl == [{0, 1}, {0}, set()]


def test_user_means_are_weighted_means_and_round_trip(tiny, tmp_path):
    inter = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "c"],
            "item_id": ["x", "y", "y", "nope"],
            "weight": [1.0, 3.0, 2.0, 1.0],
        }
    )
    ids = pl.DataFrame({"item_id": ["x", "y"], "row": [0, 1]})
    vec = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    users, means = user_means(inter, ids, vec)
    assert users.to_list() == ["a", "b", "c"]
    np.testing.assert_allclose(means, [[0.25, 1.5], [0.0, 2.0], [0.0, 0.0]])
    _, plain = user_means(inter, ids, vec, weighted=False)
    np.testing.assert_allclose(plain[0], [0.5, 1.0])
    got_ids, got, manifest = read_user_vectors(tiny["users"])
    assert got_ids.to_list() == [f"u{u}" for u in range(USERS)] and got.shape == (USERS, 8)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert manifest["kind"] == "user-vectors" and manifest["users"] == USERS
    with pytest.raises(ContractError, match="expected .user-vectors."):
        read_user_vectors(tiny["emb"])


def test_the_prefix_personalises_a_frozen_model_it_never_changes(tiny, tmp_path, monkeypatch):
    before = digest(tiny["gen"])
    used = []  # the backbone the trainer loads, and a copy of its weights before training

    def load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        run = load_run(*args, **kwargs)
        used.append((run, {k: v.clone() for k, v in run.model.state_dict().items()}))
        return run

    monkeypatch.setattr(prefix_train, "load_run", load)
    last = train_prefix(tiny["gen"], tiny["users"], tmp_path / "p", PREFIX, quiet=True)
    assert digest(tiny["gen"]) == before  # the backbone's files, bit for bit
    ((trained, weights),) = used
    after = trained.model.state_dict()  # and the weights in memory after 200 epochs
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    run = load_prefix(tmp_path / "p")
    config = run.config
    d = run.gen.model.config.d_model
    assert config["trainable_parameters"] == (8 * 64 + 64) + (64 * 2 * d + 2 * d)
    assert config["examples"] == {"search": N, "rec": N}
    assert last["epoch"] == PREFIX.epochs - 1
    row = {v: i for i, v in enumerate(run.gen.codes["item_id"].to_list())}
    users = [f"u{u}" for u in range(USERS) for _ in COLOURS]
    queries = [c for _ in range(USERS) for c in COLOURS]
    want = [row[f"i{3 * u + (c - 3 * u) % 3}"] for u in range(USERS) for c in range(3)]
    top = {flag: personal_search(run, users, queries, k=1, with_user=flag) for flag in (1, 0)}
    hit = {f: np.mean([g[0] == w for g, w in zip(top[f], want, strict=True)]) for f in top}
    assert hit[1] >= 0.8 and hit[0] <= 0.5, hit  # one of 10 items of that colour without
    rec = recommend_for_users(run, [f"u{u}" for u in range(USERS)], k=5)  # of 30 items
    mine = [{row[f"i{3 * u + j}"] for j in range(3)} for u in range(USERS)]
    assert np.mean([len(set(r) & m) / 3 for r, m in zip(rec, mine, strict=True)]) >= 0.8
    seen = recommend_for_users(run, ["u0"], k=3, exclude=[mine[0]])[0]
    assert len(seen) == 3 and not set(seen) & mine[0]


def test_prefix_resume_equals_uninterrupted_and_a_changed_backbone_is_refused(tiny, tmp_path):
    cfg = PrefixConfig(**{**PREFIX.__dict__, "epochs": 2})
    train_prefix(tiny["gen"], tiny["users"], tmp_path / "a", cfg, quiet=True)
    train_prefix(
        tiny["gen"],
        tiny["users"],
        tmp_path / "b",
        PrefixConfig(**{**cfg.__dict__, "epochs": 1}),
        quiet=True,
    )
    train_prefix(None, None, tmp_path / "b", cfg, resume=True, quiet=True)
    a, b = ((tmp_path / x / PREFIX_WEIGHTS).read_bytes() for x in "ab")
    assert a == b
    with pytest.raises(ContractError, match="already holds a run"):
        train_prefix(tiny["gen"], tiny["users"], tmp_path / "a", cfg, quiet=True)
    copy = tmp_path / "gen"
    import shutil

    shutil.copytree(tiny["gen"], copy)
    train_prefix(copy, tiny["users"], tmp_path / "c", cfg, quiet=True)
    weights = next((copy / "model").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ContractError, match="changed since this prefix was trained"):
        load_prefix(tmp_path / "c")


def test_cli_and_runner(tiny, tmp_path, capsys):
    def cli(*args: object) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    out = tmp_path / "p"
    small = ("--epochs", 2, "--hidden", 16, "--val-examples", 0, "--quiet")
    code, text, err = cli(
        "train-prefix", tiny["gen"], "--users", tiny["users"], "--out", out, *small
    )
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["train"]["hidden"] == 16
    code, text, _ = cli("generate", out, "--user", "u1", "--query", "red", "-k", 2)
    assert code == 0 and len(text.strip().splitlines()) == 2
    code, text, _ = cli("generate", out, "--user", "u1", "-k", 2)
    assert code == 0 and len(text.strip().splitlines()) == 2
    code, _, err = cli("generate", tiny["gen"], "--user", "u1", "--query", "red")
    assert code == 2 and "needs a prefix run" in err and err.count("\n") == 1
    code, _, err = cli(
        "train-prefix", tiny["gen"], "--users", tiny["emb"], "--out", tmp_path / "q", *small
    )
    assert code == 2 and "expected 'user-vectors'" in err and err.count("\n") == 1
    assert not (tmp_path / "q").exists()
    code, _, err = cli("generate", out, "--user", "nobody", "--query", "red")
    assert code == 2 and "'nobody' has no vector" in err
    code, _, err = cli("evaluate-generative", out, "--test", tiny["data"])
    assert code == 2 and "no input to evaluate" in err  # the training data: nothing new
    test = tmp_path / "test"  # each user's next 3 items, tagged with their colours
    test.mkdir()
    inter = pl.read_parquet(tiny["data"] / "interactions.parquet")
    moved = inter.with_columns(
        item_id=pl.format("i{}", (pl.col("item_id").str.slice(1).cast(int) + 3) % N)
    )
    write_dataset(test, pl.read_parquet(tiny["data"] / "items.parquet"), moved)
    code, text, err = cli("evaluate-generative", out, "--test", test, "--json")
    assert code == 0, err
    report = json.loads(text)
    assert set(report["personal_search"]) >= {"with_user", "without_user", "inputs"}
    assert report["personal_search"]["inputs"] == USERS * len(COLOURS)
    assert report["rec"]["tokens"]["user_token"] == 2 and report["rec"]["users"] == USERS
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f'[experiment]\nout = "{tmp_path / "run"}"\nseed = 0\n'
        f'[experiment.given]\nprepare = "{tiny["data"]}"\nexport = "{tiny["emb"]}"\n'
        f'generative = "{tiny["gen"]}"\n[users]\nsource = "hgnn"\n'
        "[prefix]\nepochs = 1\nhidden = 16\nval_examples = 0\n"
    )
    code, _, err = cli("run", exp, "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "prefix" / "config.json").read_text())["kind"] == (
        "prefix-run"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(
        exp.read_text()
        .replace('source = "hgnn"', 'source = "twotower"')
        .replace(str(tmp_path / "run"), str(tmp_path / "run2"))
    )
    code, _, err = cli("run", bad, "--quiet")
    assert code == 2 and "needs the [twotower] stage" in err
