"""Bad input to the Semantic-ID / generative commands (found by review): each is one line on
stderr and exit 2 (through the CLI entry point, in-process), with the option or file it is
about named; tiny one-epoch runs, no quality asked of them."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from cli_checks import cli, one_line_error
from tiny_t5 import TINY_T5

from audiograph.graphs.contract import INTERACTION_SCHEMA, write_dataset
from audiograph.hgnn.user_means import export_user_means
from audiograph.semantic_ids.config import PrefixConfig
from audiograph.semantic_ids.generative_train import train_generative
from audiograph.semantic_ids.prefix_train import train_prefix

N, USERS = 30, 10  # items i0..i29 coloured i % 3; user u has items 3u, 3u+1, 3u+2
COLOURS = ("red", "blue", "green")
ONE_EPOCH = PrefixConfig(hidden=8, batch_size=16, epochs=1, val_examples=0, warmup_steps=1)


def _dataset(folder: Path, items: pl.DataFrame, rows: list[tuple]) -> Path:
    inter = pl.DataFrame(
        rows, schema={**INTERACTION_SCHEMA, "tags": pl.List(pl.Utf8)}, orient="row"
    )
    ids = items["item_id"].to_list()
    queries = pl.DataFrame({"query": [COLOURS[i % 3] for i in range(N)], "item_id": ids})
    folder.mkdir()
    write_dataset(folder, items, inter, None, queries)
    return folder


def _rows(users: range, offset: int = 0) -> list[tuple]:
    """User ``u`` tags items ``3u + offset + j`` (j < 3) with their colours."""
    return [
        (f"u{u}", f"i{(3 * u + offset + j) % N}", 1.0, "stream", 1000 + j, [COLOURS[j % 3]])
        for u in users
        for j in range(3)
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, random_sids) -> dict:
    """A train part (users u0..u9) and a test part (their next items, new tags); a
    one-epoch generative run; user vectors of u0..u4 (``half``) and of users the data does
    not know (``strangers``); one-epoch prefix runs on each task alone."""
    root = tmp_path_factory.mktemp("bad")
    ids = [f"i{i}" for i in range(N)]
    items = pl.DataFrame(
        {"item_id": ids, "item_type": ["music"] * N, "title": [f"title {i}" for i in range(N)]}
    )
    data = _dataset(root / "data", items, _rows(range(USERS)))
    test = _dataset(root / "test", items, _rows(range(USERS), offset=3))
    half = _dataset(root / "half_data", items, _rows(range(USERS // 2)))
    strangers = _dataset(
        root / "strangers_data",
        items,
        [(f"x{u}", *r[1:]) for u, r in enumerate(_rows(range(3)))],
    )
    emb, sid = random_sids(root, ids)
    train_generative(data, sid, root / "gen", replace(TINY_T5, epochs=1), quiet=True)
    export_user_means(emb, data, root / "users", weighted=False, quiet=True)
    export_user_means(emb, half, root / "half", weighted=False, quiet=True)
    export_user_means(emb, strangers, root / "strangers", weighted=False, quiet=True)
    out = {"root": root, "items": items, "data": data, "test": test, "gen": root / "gen"}
    out |= {"users": root / "users", "half": root / "half", "strangers": root / "strangers"}
    for tasks in (("search",), ("rec",)):
        out[tasks[0]] = root / f"prefix_{tasks[0]}"
        cfg = replace(ONE_EPOCH, tasks=tasks)
        train_prefix(root / "gen", root / "half", out[tasks[0]], cfg, quiet=True)
    return out


def report(capsys, run: Path, test: Path, *more: object) -> dict:
    code, out, err = cli(capsys, "evaluate-generative", run, "--test", test, "--json", *more)
    assert code == 0, err
    return json.loads(out)


# 1. A prefix run answers only the tasks it was trained on (as a generative run does).


def test_a_prefix_run_trained_on_search_alone_refuses_rec(tiny, capsys):
    code, _, err = cli(capsys, "generate", tiny["search"], "--user", "u0")
    one_line_error(code, err, str(tiny["search"]), "not trained on the rec task")
    assert set(report(capsys, tiny["search"], tiny["test"])) == {"personal_search"}
    code, out, err = cli(capsys, "generate", tiny["search"], "--user", "u0", "--query", "red")
    assert code == 0 and len(out.splitlines()) == 10, err


def test_a_prefix_run_trained_on_rec_alone_refuses_personal_search(tiny, capsys):
    code, _, err = cli(capsys, "generate", tiny["rec"], "--user", "u0", "--query", "red")
    one_line_error(code, err, str(tiny["rec"]), "not trained on the search task")
    assert set(report(capsys, tiny["rec"], tiny["test"])) == {"rec"}
    code, out, err = cli(capsys, "generate", tiny["rec"], "--user", "u0", "-k", 3)
    assert code == 0 and len(out.splitlines()) == 3, err


# 2. Nothing to evaluate is an error, not a report of zeros.


def test_evaluating_a_prefix_run_on_users_without_vectors(tiny, tmp_path, capsys):
    late = _dataset(tmp_path / "late", tiny["items"], _rows(range(5, USERS), offset=3))
    for run in (tiny["search"], tiny["rec"]):
        code, _, err = cli(capsys, "evaluate-generative", run, "--test", late)
        one_line_error(code, err, "no test user has a vector", str(tiny["half"]))


def test_evaluating_on_a_test_part_with_no_input(tiny, tmp_path, capsys):
    same = tmp_path / "same"  # the training interactions again, no queries: nothing new
    same.mkdir()
    inter = pl.read_parquet(tiny["data"] / "interactions.parquet")
    write_dataset(same, tiny["items"], inter)
    for run in (tiny["gen"], tiny["search"], tiny["rec"]):
        code, _, err = cli(capsys, "evaluate-generative", run, "--test", same)
        one_line_error(code, err, "no input to evaluate", str(same))


# 3. --max-inputs must be positive; absent means every input.


@pytest.mark.parametrize("value", [0, -1, -3])
def test_max_inputs_must_be_positive(tiny, capsys, value):
    for run in (tiny["gen"], tiny["search"]):
        code, _, err = cli(
            capsys, "evaluate-generative", run, "--test", tiny["test"], "--max-inputs", value
        )
        one_line_error(code, err, "--max-inputs must be >= 1", str(value))


def test_max_inputs_samples_and_its_absence_evaluates_everything(tiny, capsys):
    every = report(capsys, tiny["gen"], tiny["test"])
    assert every["rec"]["users"] == USERS and every["search"]["queries"] == len(COLOURS)
    two = report(capsys, tiny["gen"], tiny["test"], "--max-inputs", 2)
    assert two["rec"]["users"] == 2 and two["search"]["queries"] == 2


# 4. User vectors of users the generative run's data does not know.


def test_train_prefix_with_users_the_data_does_not_know(tiny, tmp_path, capsys):
    for tasks in ("search,rec", "search", "rec"):
        out = tmp_path / tasks
        code, _, err = cli(
            capsys,
            "train-prefix",
            tiny["gen"],
            "--users",
            tiny["strangers"],
            "--out",
            out,
            "--tasks",
            tasks,
            "--quiet",
        )
        one_line_error(code, err, str(tiny["strangers"]), "none of its", str(tiny["data"]))
        assert not out.exists()


# 5. A generative run's codes.parquet and tokenizer files go through their owners' checks.


CORRUPT = {
    "empty codes file": ("codes.parquet", lambda f: f.write_bytes(b""), "codes.parquet"),
    "garbage codes": (
        "codes.parquet",
        lambda f: f.write_bytes(b"PAR1 not parquet"),
        "codes.parquet",
    ),
    "no rows": ("codes.parquet", lambda f: pl.read_parquet(f).head(0).write_parquet(f), "no rows"),
    "no codes column": (
        "codes.parquet",
        lambda f: pl.read_parquet(f).drop("codes").write_parquet(f),
        "column 'codes'",
    ),
    "null code": (
        "codes.parquet",
        lambda f: (
            pl.read_parquet(f)
            .with_columns(codes=pl.when(pl.col("item_id") == "i3").then(None).otherwise("codes"))
            .write_parquet(f)
        ),
        "column 'codes'",
    ),
    "codes beyond the vocabulary": (
        "codes.parquet",
        lambda f: (
            pl.read_parquet(f)
            .with_columns(codes=pl.col("codes").list.eval(pl.element() + 100))
            .write_parquet(f)
        ),
        "column 'codes'",
    ),
    "garbage tokenizer.json": (
        "tokenizer/tokenizer.json",
        lambda f: f.write_text('{"version": '),
        "tokenizer.json",
    ),
    "garbage tokenizer_config.json": (
        "tokenizer/tokenizer_config.json",
        lambda f: f.write_bytes(b"\x00\x01"),
        "tokenizer_config.json",
    ),
    "no tokenizer": ("tokenizer", shutil.rmtree, "tokenizer"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_generative_run_with_corrupt_codes_or_tokenizer(tiny, tmp_path, capsys, case):
    name, corrupt, words = CORRUPT[case]
    run = tmp_path / "gen"
    shutil.copytree(tiny["gen"], run)
    corrupt(run / name)
    code, _, err = cli(capsys, "generate", run, "--query", "red")
    one_line_error(code, err, str(run / name.split("/")[0]), words)
    code, _, err = cli(capsys, "evaluate-generative", run, "--test", tiny["test"])
    one_line_error(code, err, words)


def test_semantic_ids_with_garbage_codes_are_refused_before_training(tiny, tmp_path, capsys):
    sid = tmp_path / "sid"
    shutil.copytree(tiny["root"] / "sid", sid)
    (sid / "codes.parquet").write_bytes(b"garbage")
    out = tmp_path / "gen"
    code, _, err = cli(
        capsys, "train-generative", tiny["data"], "--sids", sid, "--out", out, "--quiet"
    )
    one_line_error(code, err, str(sid / "codes.parquet"), "not a readable parquet file")
    assert not out.exists()


# 7. Resuming a finished run.


def test_resuming_a_finished_prefix_run_says_it_is_complete(tiny, tmp_path, capsys):
    out = tmp_path / "p"
    train_prefix(tiny["gen"], tiny["half"], out, ONE_EPOCH, quiet=True)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    args = ("train-prefix", tiny["gen"], "--users", tiny["half"], "--out", out, "--resume")
    code, text, err = cli(capsys, *args, "--quiet")
    assert code == 0, err
    assert "already complete" in text and "1 epoch" in text and "nan" not in text, text
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


# 8. A prefix run whose config.json is torn names the command that made it.


@pytest.mark.parametrize("keep", [0, 40])
def test_a_torn_prefix_config_names_train_prefix(tiny, tmp_path, capsys, keep):
    run = tmp_path / "p"
    shutil.copytree(tiny["search"], run)
    config = run / "config.json"
    config.write_bytes(config.read_bytes()[:keep])
    for args in (
        ("generate", run, "--user", "u0", "--query", "red"),
        ("evaluate-generative", run, "--test", tiny["test"]),
    ):
        code, _, err = cli(capsys, *args)
        one_line_error(code, err, str(config), "'audiograph train-prefix'")
        assert "train-generative" not in err
