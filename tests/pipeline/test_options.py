"""Stage configs and the command-line options generated from them: every field documented
and exposed, --set / --config / flags in the documented order, one-line errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import typer

from audiograph.core.config import Validated, configure, field_docs, parse_text
from audiograph.core.errors import ContractError
from audiograph.graphs.config import GraphConfig, SplitConfig
from audiograph.hgnn.config import ExportConfig, HGNNConfig
from audiograph.pipeline.cli import app
from audiograph.pipeline.options import Settings
from audiograph.semantic_ids.config import FinetuneConfig, GenerativeConfig, SemanticIDConfig
from audiograph.twotower.config import EvaluationConfig, LightGCNConfig, TwoTowerConfig

COMMANDS = {
    "build-graph": GraphConfig,
    "split": SplitConfig,
    "train-hgnn": HGNNConfig,
    "export": ExportConfig,
    "train-twotower": TwoTowerConfig,
    "evaluate": EvaluationConfig,
    "semantic-ids": SemanticIDConfig,
    "train-generative": GenerativeConfig,
    "embed-space": FinetuneConfig,
}
CONFIGS = [*COMMANDS.values(), LightGCNConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_config_is_frozen_validated_and_documented(cls):
    names = [f.name for f in dataclasses.fields(cls)]
    docs = field_docs(cls)
    assert sorted(docs) == sorted(names), f"undocumented: {set(names) - set(docs)}"
    assert all(docs.values())
    cfg = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, names[0], getattr(cfg, names[0]))
    assert cls.validate is not Validated.validate  # each config checks its own fields


@pytest.mark.parametrize("command", COMMANDS)
def test_every_config_field_is_an_option_with_its_default_in_the_help(command):
    click_cmd = typer.main.get_command(app).commands[command]
    options = {o for p in click_cmd.params for o in p.opts}
    helps = {o: p.help or "" for p in click_cmd.params for o in p.opts}
    cls = COMMANDS[command]
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        assert flag in options, f"{command}: no {flag}"
        assert "[default: " in helps[flag]
    assert {"--config", "--set"} <= options


RUN_OPTIONS = {
    "split": {"--out", "--quiet"},
    "featurize": {"--quiet", "--distributed"},
    "build-graph": {"--out", "--quiet"},
    "train-hgnn": {"--out", "--quiet", "--resume", "--distributed"},
    "export": {"--out", "--quiet", "--distributed"},
    "train-twotower": {"--out", "--quiet", "--resume", "--distributed"},
    "train-baseline": {"--out", "--quiet", "--resume", "--distributed"},
    "evaluate": {"--quiet"},
    "embed-space": {"--out", "--quiet"},
    "semantic-ids": {"--out", "--quiet"},
    "train-generative": {"--out", "--quiet", "--resume"},
    "train-prefix": {"--out", "--quiet", "--resume"},
}


@pytest.mark.parametrize("command", RUN_OPTIONS)
def test_each_stage_command_has_exactly_its_run_options(command):
    click_cmd = typer.main.get_command(app).commands[command]
    options = {o for p in click_cmd.params for o in p.opts}
    assert options & {"--out", "--quiet", "--resume", "--distributed"} == RUN_OPTIONS[command]
    assert "--out" not in RUN_OPTIONS[command] or next(
        p.required for p in click_cmd.params if "--out" in p.opts
    )


def test_text_values_parse_to_the_field_types():
    assert parse_text("15,10", list[int]) == [15, 10]
    assert parse_text("5000", str | int | float) == 5000
    assert parse_text("0.5", str | int | float) == 0.5
    assert parse_text("min", str | int | float) == "min"
    assert parse_text("book=0.1,music=1", dict[str, float] | None) == {"book": 0.1, "music": 1}
    assert parse_text("none", int | None) is None
    assert parse_text("search,rec", tuple[str, ...]) == ["search", "rec"]
    assert parse_text("true", bool) is True


def test_settings_order_file_then_set_then_flags(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[hgnn]\nhidden = 16\nepochs = 2\nfanout = [4, 4]\n")
    s = Settings(HGNNConfig, "hgnn", toml, {"hidden": 32, "epochs": None}, ("epochs=5",))
    cfg = s.build()
    assert (cfg.hidden, cfg.epochs, cfg.fanout) == (32, 5, [4, 4])
    resumed = Settings(HGNNConfig, "hgnn", None, {}, ()).build(base={"hidden": 8})
    assert resumed.hidden == 8
    with pytest.raises(ContractError, match="--set: unknown option 'hiden'"):
        Settings(HGNNConfig, "hgnn", None, {}, ("hiden=3",)).build()
    with pytest.raises(ContractError, match=r"--set hidden: expected int, got 'big'"):
        Settings(HGNNConfig, "hgnn", None, {}, ("hidden=big",)).build()
    with pytest.raises(ContractError, match=r"--fanout: expected a list of int"):
        Settings(HGNNConfig, "hgnn", None, {"fanout": "3,x"}, ()).build()
    with pytest.raises(ContractError, match="--fanout needs 2 sizes"):
        Settings(HGNNConfig, "hgnn", None, {}, ("fanout=3",)).build()


def test_python_api_options_override_the_config():
    base = SplitConfig(seed=3)
    assert configure(SplitConfig, base, {"test_fraction": 0.3}, "split") == SplitConfig(
        test_fraction=0.3, seed=3
    )
    assert configure(ExportConfig, None, {"cache_dir": None}, "export").cache_dir is None
    with pytest.raises(ContractError, match="split: unknown option 'sed'"):
        configure(SplitConfig, None, {"sed": 1}, "split")
    with pytest.raises(ContractError, match="cfg must be a SplitConfig"):
        configure(SplitConfig, 0.2, {}, "split")
    assert GraphConfig(user_cap=0, top_k=0).user_cap is None  # 0 = no limit


def test_cli_set_and_flags_reach_the_stage(tmp_path):
    """``split --set`` on the command line: the manifest records the values, and a bad
    value is a one-line error (exit 2) that writes nothing."""
    data = tmp_path / "d"
    cmd = [sys.executable, "-m", "audiograph"]
    subprocess.run(
        [
            *cmd,
            "prepare",
            "synthetic",
            "--out",
            str(data),
            "--users",
            "200",
            "--items",
            "music=100,podcast=50,audiobook=20",
        ],
        check=True,
        capture_output=True,
    )
    res = subprocess.run(
        [
            *cmd,
            "split",
            str(data),
            "--out",
            str(tmp_path / "s"),
            "--quiet",
            "--set",
            "seed=4",
            "--label-fraction",
            "0.3",
            "--set",
            "downsample=audiobook=0.5",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert (m["seed"], m["label_fraction"], m["downsample"]) == (4, 0.3, {"audiobook": 0.5})
    bad = subprocess.run(
        [*cmd, "split", str(data), "--out", str(tmp_path / "b"), "--set", "test_fraction=2"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "test-fraction" in bad.stderr
    assert not (tmp_path / "b").exists()
