"""``audiograph run`` checks: every stage's needs before any stage runs, the help that shows
the bracketed table names, an experiment file's invalid setting named by file and table,
and an output corrupted since it was recorded is rebuilt, not reported as cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_guarantees import cli, one_line_error
from tiny_settings import TINY_HGNN

from audiograph.core.runs import load_weights
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.pipeline.runner import read_experiment, run_experiment

PREPARE = '[prepare]\nadapter = "synthetic"\nusers = 60\nitems = {music = 20, podcast = 10}\n'


def _exp(tmp_path: Path, tables: str) -> Path:
    exp = tmp_path / "exp.toml"
    exp.write_text(f'[experiment]\nout = "{tmp_path / "out"}"\nseed = 0\n{PREPARE}{tables}')
    return exp


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        (  # failed only after [split] had run
            '[split]\n[users]\nsource = "hgnn"\n',
            ["stage [users] with source = 'hgnn' needs the [export] stage"],
        ),
        (
            "[split]\n[users]\n",
            ["stage [users] with source = 'twotower' needs the [twotower] stage"],
        ),
        (
            "[split]\n[twotower]\n",
            ["stage [twotower] with use_hgnn = true needs the [export] stage"],
        ),
        ("[split]\n[prefix]\n", ["stage [prefix] needs [generative]"]),
    ],
)
def test_a_missing_stage_is_refused_before_anything_runs(tmp_path, capsys, tables, words):
    exp = _exp(tmp_path, tables)
    one_line_error(*cli(capsys, "run", exp)[::2], str(exp), *words)
    assert [p.name for p in tmp_path.iterdir()] == ["exp.toml"]  # no out, no split


def test_a_stage_needs_only_what_its_settings_read(tmp_path):
    exp = read_experiment(_exp(tmp_path, "[split]\n[twotower]\nuse_hgnn = false\n"))
    assert list(exp.settings) == ["prepare", "split", "twotower"]


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("[graph]\n[hgnn]\nepochs = -1\n", ["[hgnn]: epochs must be >= 0, got -1"]),
        ("[graph]\n[hgnn]\nlr = inf\n", ["[hgnn]: lr must be a finite number"]),
        ("[split]\n[users]\nsource = 'x'\n", ["[users]: source must be one of"]),
    ],
)
def test_an_invalid_setting_names_the_file_and_table(tmp_path, capsys, table, words):
    exp = _exp(tmp_path, table)
    one_line_error(*cli(capsys, "run", exp)[::2], f"{exp} [", *words)
    assert [p.name for p in tmp_path.iterdir()] == ["exp.toml"]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--help"], ["the runner's [baseline] stage"]),
        (["run", "--help"], ["[experiment]"]),
        (["train-hgnn", "--help"], ["[hgnn] table", "[default: 256]"]),
        (["train-baseline", "--help"], ["[baseline] stage", "[baseline] table"]),
    ],
)
def test_help_shows_the_bracketed_names(capsys, monkeypatch, args, shown):
    monkeypatch.setenv("COLUMNS", "400")
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    for text in shown:
        assert text in out, out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    prepare_synthetic(root / "data", users=150, items={"music": 80, "podcast": 40}, seed=0)
    return root / "data"


def _corrupt(path: Path) -> None:
    """Random bytes of the same size, written in place."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(os.urandom(size))
    assert path.stat().st_size == size


def _ran(done: dict) -> list[str]:
    return [name for name, d in done.items() if not d["cached"]]


def test_a_corrupted_output_is_rebuilt_not_reported_cached(data, tmp_path):
    out = tmp_path / "exp"
    doc = {
        "experiment": {"out": str(out), "seed": 0, "data": str(data)},
        "split": {},
        "graph": {"encoder": "none"},
        "hgnn": {**TINY_HGNN, "epochs": 1},
        "export": {},
    }
    first = run_experiment(read_experiment(doc), quiet=True)
    assert _ran(first) == ["split", "graph", "hgnn", "export"]
    weights = out / "hgnn" / "model.safetensors"
    _corrupt(weights)
    again = run_experiment(read_experiment(doc), quiet=True)
    assert _ran(again) == ["hgnn", "export"]  # it and what reads it; split, graph cached
    assert load_weights(weights)  # a readable model again
    assert _ran(run_experiment(read_experiment(doc), quiet=True)) == []
    # the last stage's output: only it reruns
    _corrupt(max((out / "export").rglob("*.npy"), key=lambda p: p.stat().st_size))
    assert _ran(run_experiment(read_experiment(doc), quiet=True)) == ["export"]
    # a record written before output fingerprints: cached as before, fingerprints added
    record = json.loads((out / "pipeline.json").read_text())
    for entry in record["stages"].values():
        del entry["output"]
    (out / "pipeline.json").write_text(json.dumps(record))
    assert _ran(run_experiment(read_experiment(doc), quiet=True)) == []
    record = json.loads((out / "pipeline.json").read_text())
    assert all(entry["output"] for entry in record["stages"].values())
