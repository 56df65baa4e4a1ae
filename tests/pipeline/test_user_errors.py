"""Bad options and settings found by review: each is one line on stderr, exit 2, and no
output folder is left behind (through the CLI entry point, in-process)."""

from __future__ import annotations

import pytest
import torch
from test_guarantees import cli, one_line_error

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.pipeline.options import Settings
from audiograph.twotower.config import TwoTowerConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny dataset and its graph (no text)."""
    root = tmp_path_factory.mktemp("tiny")
    prepare_synthetic(root / "data", users=60, items={"music": 20, "podcast": 10}, seed=0)
    build_graph(root / "data", root / "graph", GraphConfig(encoder="none"), quiet=True)
    return root


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_build_graph_on_cuda_without_cuda(tiny, tmp_path, capsys):
    code, _, err = cli(
        capsys, "build-graph", tiny / "data", "--out", tmp_path / "g", "--device", "cuda"
    )
    one_line_error(code, err, "--device cuda: CUDA is not available")
    assert list(tmp_path.iterdir()) == []


def test_build_graph_with_a_spark_master_spark_does_not_know(tiny, tmp_path, capsys):
    code, _, err = cli(
        capsys,
        "build-graph",
        tiny / "data",
        "--out",
        tmp_path / "g",
        "--engine",
        "spark",
        "--encoder",
        "none",
        "--master",
        "nonsense://x",
    )
    one_line_error(code, err, "--master must be", "'nonsense://x'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "setting, words",
    [
        ('users = "many"', "option 'users' must be int, got 'many'"),
        ('items = "music=x"', "option 'items' must be a table"),
    ],
)
def test_experiment_stage_settings_of_the_wrong_type(tmp_path, capsys, setting, words):
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f'[experiment]\nout = "{tmp_path / "out"}"\n\n[prepare]\nadapter = "synthetic"\n{setting}\n'
    )
    one_line_error(*cli(capsys, "run", exp)[::2], f"{exp} [prepare]", words)
    assert [p.name for p in tmp_path.iterdir()] == ["exp.toml"]


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--loss", "hinge"], "--loss must be one of"),
        (["--balance", "lots"], "--balance"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--conv", "gcn"], "--conv must be one of"),
        (["--hidden", "x"], "Invalid value for '--hidden'"),
        (["--device", "tpu"], "--device"),
        (["--balance", "inf"], "--balance must be a finite number, got inf"),
        (["--set", "lr=inf"], "--lr must be a finite number"),
        (["--set", "temperature=nan"], "--temperature must be a finite number"),
        (["--lr", "inf"], "--lr must be a finite number"),
    ],
)
def test_bad_training_options_write_nothing(tiny, tmp_path, capsys, flags, words):
    args = ["train-hgnn", tiny / "graph", "--out", tmp_path / "run", *flags]
    one_line_error(*cli(capsys, *args)[::2], words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "table, words",
    [
        ("[hgn]\nhidden = 8\n", "unknown table [hgn] (did you mean [hgnn]?"),
        ("hidden = 8\n", "setting 'hidden' is outside any table"),
    ],
)
def test_config_file_tables_the_command_would_ignore(tiny, tmp_path, capsys, table, words):
    (cfg := tmp_path / "cfg.toml").write_text(table)
    args = ["train-hgnn", tiny / "graph", "--out", tmp_path / "r", "--config", cfg]
    one_line_error(*cli(capsys, *args)[::2], str(cfg), words)
    assert [p.name for p in tmp_path.iterdir()] == ["cfg.toml"]


def test_an_experiment_file_serves_as_a_config_file(tmp_path):
    (cfg := tmp_path / "exp.toml").write_text(
        '[experiment]\nout = "x"\n[prepare]\nadapter = "synthetic"\n[twotower]\nepochs = 3\n'
    )
    assert Settings(TwoTowerConfig, "twotower", cfg, {}, ()).build().epochs == 3


def test_no_use_hgnn_is_not_ignored():
    """``--no-use-hgnn`` (the generated flag) reaches the config; ``--no-hgnn`` (the
    command's own) not given must not override it."""
    s = Settings(TwoTowerConfig, "twotower", None, {"use_hgnn": False}, ())
    assert s.build(use_hgnn=None).use_hgnn is False
    assert s.build(use_hgnn=False).use_hgnn is False


def test_no_hgnn_and_use_hgnn_together_are_refused(tiny, tmp_path, capsys):
    args = ["train-twotower", tiny / "data", "--out", tmp_path / "r", "--no-hgnn", "--use-hgnn"]
    one_line_error(*cli(capsys, *args)[::2], "--no-hgnn and --use-hgnn contradict")
    assert list(tmp_path.iterdir()) == []
