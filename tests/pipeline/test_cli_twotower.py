"""The two-tower stage's commands: split end to end, user errors as one line + exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.pipeline.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "from audiograph.pipeline.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


def test_split_with_downsample_writes_train_and_test(tmp_path):
    items = {"music": 60, "podcast": 30, "audiobook": 20}
    prepare_synthetic(tmp_path / "data", users=200, items=items, seed=1)
    out = tmp_path / "split"
    res = run_cli(
        "split",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--method",
        "random",
        "--downsample",
        "audiobook=0.5",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "random" and manifest["downsample"] == {"audiobook": 0.5}
    full = pl.read_parquet(tmp_path / "data" / "interactions.parquet")
    train = pl.read_parquet(out / "train" / "interactions.parquet")
    test = pl.read_parquet(out / "test" / "interactions.parquet")
    items_df = pl.read_parquet(tmp_path / "data" / "items.parquet").select("item_id", "item_type")
    pairs = ["user_id", "item_id"]
    assert train.join(test, on=pairs).height == 0  # no pair on both sides
    book_pairs = {
        name: df.join(items_df, on="item_id")
        .filter(pl.col("item_type") == "audiobook")
        .select(pairs)
        .unique()
        .height
        for name, df in (("full", full), ("train", train), ("test", test))
    }
    # test keeps its audiobook pairs; train keeps half of the rest (round half up)
    assert book_pairs["train"] == round((book_pairs["full"] - book_pairs["test"]) * 0.5 + 1e-9)


def test_user_errors_are_one_line(tmp_path):
    res = run_cli("split", str(tmp_path), "--out", str(tmp_path / "s"), "--downsample", "x=y")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "--downsample" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("evaluate", str(tmp_path), "--test", str(tmp_path))
    assert res.returncode == 2 and "not a two-tower run directory" in res.stderr
    res = run_cli("train-twotower", str(tmp_path), "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "--embeddings" in res.stderr


def test_recommend_needs_one_user_or_every_user(tmp_path, capsys):
    for both_or_none in (["--user", "u0", "--out", str(tmp_path / "s.parquet")], []):
        with pytest.raises(SystemExit) as done:
            main(["recommend", str(tmp_path), *both_or_none])
        err = capsys.readouterr().err
        assert done.value.code == 2 and err.count("\n") == 1 and "give --user USER" in err
    assert list(tmp_path.iterdir()) == []


def test_train_baseline_is_the_plain_two_tower(tmp_path):
    items = {"music": 40, "podcast": 20, "audiobook": 10}
    prepare_synthetic(tmp_path / "data", users=80, items=items, seed=2)
    toml = tmp_path / "b.toml"  # the [baseline] table: the command's object
    cache = tmp_path / "c"
    toml.write_text(f'[baseline]\ntower_dims = [16, 8]\ncat_dim = 4\ncache_dir = "{cache}"\n')
    out = tmp_path / "b"
    args = ["train-baseline", str(tmp_path / "data"), "--out", str(out), "--epochs", "1"]
    res = run_cli(*args, "--config", str(toml), "--quiet")
    assert res.returncode == 0, res.stderr
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["use_hgnn"], train["tower_dims"], train["epochs"]) == (False, [16, 8], 1)
    res = run_cli(*args, "--use-hgnn")
    assert res.returncode == 2 and "no HGNN inputs" in res.stderr, res.stderr
