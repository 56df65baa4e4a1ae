"""README "Guarantees", through the real CLI entry point on a tiny synthetic catalog: the
exit code, exactly one line on stderr, and the file tree before/after (nothing of the
user's changed, no temporary leftovers)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
from cli_checks import cli, one_line_error
from tiny_settings import TINY_HGNN

from audiograph.core.atomic import claim_output
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.hgnn.export import export_embeddings
from audiograph.hgnn.train import HGNNConfig, train_hgnn
from audiograph.pipeline.cli import main
from audiograph.twotower.train import TwoTowerConfig, train_twotower

CLI = [sys.executable, "-m", "audiograph"]  # the CLI as `python -m audiograph`

TINY_HGNN = {**TINY_HGNN, "patience": 9}
HGNN_TOML = (
    "[hgnn]\nmax_epoch_edges = 2000\nhidden = 8\nfanout = [3, 2]\nprefetch = 0\n"
    "eval_candidates = 10\n"
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """dataset → graph (no text) → 1-epoch HGNN run → embeddings → 1-epoch two-tower run."""
    root = tmp_path_factory.mktemp("chain")
    items = {"music": 60, "podcast": 30, "audiobook": 20}
    prepare_synthetic(root / "data", users=200, items=items, seed=0)
    build_graph(root / "data", root / "graph", GraphConfig(encoder="none"), quiet=True)
    train_hgnn(root / "graph", root / "hgnn", HGNNConfig(epochs=1, **TINY_HGNN), quiet=True)
    export_embeddings(root / "hgnn", root / "emb", quiet=True)
    cfg = TwoTowerConfig(
        epochs=1, tower_dims=[16, 8], cat_dim=4, batch_size=64, cache_dir=str(root / "cache")
    )
    train_twotower(root / "data", root / "emb", root / "2t", cfg, quiet=True)
    return root


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (hidden ones too) → content hash ('dir' for folders)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("command", [["build-graph", "{d}", "--encoder", "none"], ["split", "{d}"]])
def test_out_equal_to_the_input_is_refused(chain, tmp_path, capsys, command):
    d = copy(chain / "data", tmp_path / "dc")
    before = tree(tmp_path)
    args = [a.format(d=d) for a in command]
    one_line_error(*cli(capsys, *args, "--out", d)[::2], "is the input")
    one_line_error(*cli(capsys, *args, "--out", d / "sub")[::2], "lies inside the input")
    one_line_error(*cli(capsys, *args, "--out", tmp_path)[::2], "contains the input")
    (tmp_path / "link").symlink_to(d)
    before["link"] = "dir"
    one_line_error(*cli(capsys, *args, "--out", tmp_path / "link")[::2], "is the input")
    assert tree(tmp_path) == before


def test_foreign_or_other_kind_outputs_are_never_replaced(chain, tmp_path, capsys):
    w = tmp_path / "w"
    w.mkdir()
    (w / "manifest.json").write_text('{"manifest_version": 3}')
    (w / "keep.js").write_text("x")
    copy(chain / "data", tmp_path / "dataset")  # an audiograph dataset, not a graph
    before = tree(tmp_path)
    args = ["build-graph", chain / "data", "--encoder", "none", "--quiet", "--out"]
    one_line_error(*cli(capsys, *args, w)[::2], "not written by audiograph")
    one_line_error(*cli(capsys, *args, tmp_path / "dataset")[::2], "holds a 'dataset' output")
    (tmp_path / "file").write_text("mine")
    before["file"] = tree(tmp_path)["file"]
    one_line_error(*cli(capsys, *args, tmp_path / "file")[::2], "not a directory")
    assert tree(tmp_path) == before


def test_a_graph_replaces_a_graph_but_not_files_added_to_it(chain, tmp_path, capsys):
    g = tmp_path / "g"
    args = ["build-graph", chain / "data", "--encoder", "none", "--quiet", "--out", g]
    assert cli(capsys, *args)[0] == 0
    first = tree(g)
    assert cli(capsys, *args, "--top-k", "3")[0] == 0  # replaced: same kind
    assert tree(g) != first and sorted(p.name for p in tmp_path.iterdir()) == ["g"]
    (g / "notes.txt").write_text("mine")
    before = tree(tmp_path)
    one_line_error(*cli(capsys, *args)[::2], "did not write (e.g. notes.txt)")
    assert tree(tmp_path) == before


def test_leftovers_of_killed_runs_are_cleaned_and_a_moved_output_restored(chain, tmp_path):
    g = tmp_path / "g"
    build_graph(chain / "data", g, GraphConfig(encoder="none"), quiet=True)
    graph = tree(g)
    # a kill between the two renames of a replacement leaves only the old output aside
    env = {**os.environ, "AUDIOGRAPH_CRASH_AT": "swap"}
    cmd = [
        sys.executable,
        "-c",
        "from audiograph.pipeline.cli import main; main()",
        "build-graph",
        str(chain / "data"),
        "--out",
        str(g),
        "--encoder",
        "none",
        "--top-k",
        "3",
        "--quiet",
    ]
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == -9
    assert not g.exists()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith(".g.old-")]
    (tmp_path / ".g.tmp-999999999-dead").mkdir()  # a killed run's unfinished output
    claim_output(g, "graph")  # what every writer does first
    assert tree(g) == graph and not aside.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_outputs_get_the_users_umask(chain, tmp_path):
    old = os.umask(0o027)
    try:
        build_graph(chain / "data", tmp_path / "g", GraphConfig(encoder="none"), quiet=True)
    finally:
        os.umask(old)
    assert (tmp_path / "g").stat().st_mode & 0o777 == 0o750
    for f in (tmp_path / "g").iterdir():
        assert f.stat().st_mode & 0o777 == 0o640, f


def test_single_file_output_is_atomic_and_guarded(chain, tmp_path, capsys):
    mine = tmp_path / "mine.parquet"
    mine.write_bytes(b"not audiograph's")
    one_line_error(
        *cli(capsys, "recommend", chain / "2t", "--out", mine, "-k", "3")[::2],
        "not written by audiograph",
    )
    assert mine.read_bytes() == b"not audiograph's"
    scores = tmp_path / "s.parquet"
    for k in (3, 2):  # the second run replaces the first (audiograph wrote it)
        assert cli(capsys, "recommend", chain / "2t", "--out", scores, "-k", k)[0] == 0
    import polars as pl

    assert pl.read_parquet(scores)["rank"].max() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.parquet", "s.parquet"]
    inside = chain / "2t" / "s.parquet"
    # score-users: the earlier name of recommend --out
    one_line_error(*cli(capsys, "score-users", chain / "2t", "--out", inside)[::2], "inside")


# ----------------------------------------------------------------------------- runs


def test_trainer_out_that_is_not_a_run_of_its_kind(chain, tmp_path, capsys):
    user = tmp_path / "user"
    user.mkdir()
    (user / "config.json").write_text('{"mine": 1}')
    (user / "metrics.jsonl").write_text("mine\n")
    before = tree(tmp_path)
    g = chain / "graph"
    one_line_error(*cli(capsys, "train-hgnn", g, "--out", user)[::2], "not an audiograph run")
    one_line_error(*cli(capsys, "train-hgnn", g, "--out", chain / "2t")[::2], "'twotower-run'")
    one_line_error(*cli(capsys, "train-hgnn", g, "--out", chain / "hgnn")[::2], "--resume")
    two_tower = ["train-twotower", chain / "data", "--embeddings", chain / "emb"]
    one_line_error(*cli(capsys, *two_tower, "--out", chain / "hgnn")[::2], "'hgnn-run'")
    assert tree(tmp_path) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda(chain, tmp_path, capsys):
    for cmd in (["train-hgnn", chain / "graph"], ["train-twotower", chain / "data", "--no-hgnn"]):
        code, _, err = cli(capsys, *cmd, "--out", tmp_path / "r", "--device", "cuda")
        one_line_error(code, err, "CUDA is not available")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "table, words",
    [
        ("[hgnn]\nhidden = 'big'\n", "option 'hidden' must be int"),
        ("[hgnn]\nfanout = [3, 'x']\n", "option 'fanout' must be a list of int"),
        ("[hgnn]\nhiden = 8\n", "unknown option 'hiden'"),
        ("[hgnn\n", "cannot read config"),
        ("[twotower]\nepochs = 2.5\n", "option 'epochs' must be int"),
    ],
)
def test_bad_toml_tables_write_nothing(chain, tmp_path, capsys, table, words):
    (cfg := tmp_path / "cfg.toml").write_text(table)
    cmd = (
        ["train-twotower", chain / "data", "--no-hgnn"]
        if "twotower" in table
        else ["train-hgnn", chain / "graph"]
    )
    one_line_error(*cli(capsys, *cmd, "--out", tmp_path / "r", "--config", cfg)[::2], words)
    assert [p.name for p in tmp_path.iterdir()] == ["cfg.toml"]


def _crash_hgnn(chain: Path, run: Path, point: str, epochs: int = 3) -> None:
    (cfg := run.parent / "hgnn.toml").write_text(HGNN_TOML + "patience = 9\n")
    env = {**os.environ, "AUDIOGRAPH_CRASH_AT": point}
    cmd = [
        sys.executable,
        "-c",
        "from audiograph.pipeline.cli import main; main()",
        "train-hgnn",
        str(chain / "graph"),
        "--out",
        str(run),
        "--config",
        str(cfg),
        "--epochs",
        str(epochs),
        "--quiet",
    ]
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == -9


def test_resume_keeps_the_runs_settings_and_refuses_changed_inputs(chain, tmp_path, capsys):
    run = tmp_path / "run"
    _crash_hgnn(chain, run, "metrics.logged@2")  # dies in epoch 1 of 3, before its checkpoint
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    g = chain / "graph"
    one_line_error(
        *cli(capsys, "train-hgnn", g, "--out", run, "--resume", "--hidden", "32")[::2],
        "'hidden' is 32 but the run was started with 8",
    )
    other = copy(g, tmp_path / "g2")
    one_line_error(
        *cli(capsys, "train-hgnn", other, "--out", run, "--resume")[::2],
        f"was trained on {g.resolve()}, not {other.resolve()}",
    )
    assert cli(capsys, "train-hgnn", g, "--out", run, "--resume", "--quiet")[0] == 0
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]  # the run's own 3 epochs, epoch 1 logged once
    # an input rebuilt since the run started
    run2 = tmp_path / "run2"
    g3 = copy(g, tmp_path / "g3")
    train_hgnn(g3, run2, HGNNConfig(epochs=1, **TINY_HGNN), quiet=True)
    build_graph(chain / "data", g3, GraphConfig(encoder="none", top_k=3), quiet=True)
    one_line_error(
        *cli(capsys, "train-hgnn", g3, "--out", run2, "--resume", "--epochs", "2")[::2],
        "changed since the run started",
    )


def test_corrupt_or_foreign_run_files_are_one_line(chain, tmp_path, capsys):
    g, marker = chain / "graph", tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    good = chain / "hgnn" / "checkpoint.pt"
    cases = {
        "truncated": good.read_bytes()[: good.stat().st_size // 2],
        "empty": b"",
        "foreign": (
            torch.save({"weights": torch.zeros(2)}, tmp_path / "f.pt"),
            (tmp_path / "f.pt").read_bytes(),
        )[1],
        "malicious": pickle.dumps(Evil()),
    }
    for name, data in cases.items():
        run = copy(chain / "hgnn", tmp_path / name)
        (run / "checkpoint.pt").write_bytes(data)
        code, _, err = cli(capsys, "train-hgnn", g, "--out", run, "--resume", "--epochs", "2")
        one_line_error(code, err, "checkpoint.pt")
    assert not marker.exists()  # the pickle never ran
    run = copy(chain / "hgnn", tmp_path / "bad-weights")
    (run / "model.safetensors").write_bytes(b"\x00" * 16)
    one_line_error(*cli(capsys, "export", run, "--out", tmp_path / "e")[::2], "model.safetensors")
    (run / "config.json").write_text("{not json")
    one_line_error(*cli(capsys, "export", run, "--out", tmp_path / "e")[::2], "config.json")
    assert not (tmp_path / "e").exists()


# ----------------------------------------------------------------------------- errors


def test_top_k_and_empty_query_options(chain, tmp_path, capsys):
    for cmd in (
        ["neighbors", chain / "emb", "music:0"],
        ["recommend", chain / "2t", "--user", "u0"],
        ["recommend", chain / "2t", "--out", tmp_path / "s.parquet"],
        ["generate", tmp_path, "--query", "jazz"],
    ):
        for k in ("0", "-3"):
            one_line_error(*cli(capsys, *cmd, "-k", k)[::2], "-k")
    for q in ("", "   "):
        one_line_error(*cli(capsys, "generate", tmp_path, "--query", q)[::2], "empty")
    assert list(tmp_path.iterdir()) == []


def test_file_system_errors_are_one_line(chain, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = cli(capsys, "split", chain / "data", "--out", tmp_path / "file" / "sub")
    one_line_error(code, err)


def test_internal_errors_name_a_report_and_debug_shows_the_traceback(chain, capsys, monkeypatch):
    import audiograph.graphs.store

    def broken(_):
        raise RuntimeError("boom")

    monkeypatch.setattr(audiograph.graphs.store, "graph_info", broken)
    code, _, err = cli(capsys, "info", chain / "graph")
    assert code == 1 and err.count("\n") == 1 and "RuntimeError: boom" in err, err
    report = Path(err.split("full report in ")[1].split(" ")[0])
    assert "Traceback" in report.read_text() and "boom" in report.read_text()
    report.unlink()
    with pytest.raises(RuntimeError, match="boom"):
        main(["info", str(chain / "graph"), "--debug"])


def test_no_warning_noise_on_normal_runs(chain, tmp_path):
    for args in (
        ["neighbors", chain / "emb", "music:0", "-k", "3"],
        ["recommend", chain / "2t", "--user", "u0", "-k", "3"],
        ["recommend", chain / "2t", "--out", tmp_path / "s.parquet", "--quiet"],
    ):
        res = subprocess.run(
            [*CLI, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0 and res.stderr == "", (args, res.stderr)


def test_evaluate_names_unknown_target_types_and_foreign_test_items(chain, tmp_path, capsys):
    from audiograph.graphs.contract import read_dataset, write_dataset

    ds = read_dataset(chain / "data")
    known = "--target-type 'nosuch': unknown item type (known: audiobook, music, podcast)"
    one_line_error(
        *cli(capsys, "evaluate", chain / "2t", "--test", chain / "data", "--target-type", "nosuch")[
            ::2
        ],
        known,
    )
    renamed = {"item_id": "x-" + pl.col("item_id")}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    write_dataset(
        foreign, ds.items.with_columns(**renamed), ds.interactions.with_columns(**renamed)
    )
    example = "x-" + ds.interactions["item_id"][0]
    one_line_error(
        *cli(capsys, "evaluate", chain / "2t", "--test", foreign)[::2],
        "test interactions' items is in the catalog",
        repr(example),
    )
