"""The runner after kills, edits and foreign files: a half-written stage is never reused, an
in-place edit that keeps a file's size is seen, ``--force`` reaches what depends on the
stage, a user's own ``pipeline.json`` or input folder is never written, readers put back
an output a killed writer left aside, and long stages report progress.

Kills are real: the CLI in a subprocess, SIGKILLed at a named crash point
(``AUDIOGRAPH_CRASH_AT``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from tiny_settings import TINY_HGNN

import audiograph.pipeline.runner as runner
from audiograph.core.atomic import CRASH_ENV
from audiograph.core.errors import ContractError
from audiograph.core.fingerprint import HashCache, content_fingerprint
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.pipeline.record import locked
from audiograph.pipeline.runner import read_experiment, run_experiment

CLI = [sys.executable, "-c", "from audiograph.pipeline.cli import main; main()"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
HGNN = {**TINY_HGNN, "epochs": 3, "patience": 100}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A user's own dataset: parquet tables, no manifest."""
    root = tmp_path_factory.mktemp("own")
    prepare_synthetic(root / "made", users=200, items={"music": 120, "podcast": 60}, seed=0)
    own = root / "data"
    own.mkdir()
    for table in ("items", "interactions"):
        (own / f"{table}.parquet").write_bytes((root / "made" / f"{table}.parquet").read_bytes())
    return own


def _doc(out: Path, data: Path, **stages) -> dict:
    doc = {
        "experiment": {"out": str(out), "seed": 0, "data": str(data)},
        "split": {},
        "graph": {"encoder": "none"},
        "hgnn": dict(HGNN),
        "export": {},
    }
    doc.update(stages)
    return doc


def _toml(path: Path, doc: dict) -> Path:
    lines = []
    for table, values in doc.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items() if k != "data"]
        if table == "experiment":
            lines.append(f"data = {json.dumps(values['data'])}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _digest(folder: Path) -> dict[str, str]:
    skip = {"metrics.jsonl", "config.json", "manifest.json"}  # hold timings and paths
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def _ran(done: dict) -> list[str]:
    return [name for name, d in done.items() if not d["cached"]]


def _kill(exp_file: Path, point: str, *args: str) -> None:
    res = subprocess.run(
        [*CLI, "run", str(exp_file), "--quiet", *args],
        capture_output=True,
        text=True,
        env={**ENV, CRASH_ENV: point},
    )
    assert res.returncode == -9, res.stderr


def test_a_killed_forced_stage_is_never_reused(data, tmp_path):
    out = tmp_path / "exp"
    doc = _doc(out, data)
    first = run_experiment(read_experiment(doc), quiet=True)
    complete = _digest(out / "hgnn")
    # killed after the first of three epochs of a forced rebuild
    _kill(_toml(tmp_path / "e.toml", doc), "metrics.logged@1", "--force", "hgnn")
    assert len(list(out.glob(".hgnn.stale-*"))) == 1  # the complete output, set aside
    again = run_experiment(read_experiment(doc), quiet=True)
    # the complete previous output is back (its key is the recorded one), not the half run
    assert _digest(out / "hgnn") == complete and again["hgnn"]["key"] == first["hgnn"]["key"]
    assert len((out / "hgnn" / "metrics.jsonl").read_text().splitlines()) == 3
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "lock" not in p.name]


def test_a_killed_first_stage_is_redone(data, tmp_path):
    out = tmp_path / "exp"
    doc = _doc(out, data)
    _kill(_toml(tmp_path / "e.toml", doc), "metrics.logged@1")
    assert (out / "hgnn").is_dir()  # the half-trained run the kill left
    done = run_experiment(read_experiment(doc), quiet=True)
    assert _ran(done) == ["hgnn", "export"]
    assert len((out / "hgnn" / "metrics.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("point", ["runner.finished", "runner.recorded"])
def test_kills_around_the_end_of_a_stage_leave_a_consistent_folder(data, tmp_path, point):
    """Killed after a forced stage wrote its output but before (``finished``: the previous
    output is put back) or after (``recorded``: the new one is kept) the record says so:
    the rerun finds a complete, recorded output and no leftovers; what reads a new output
    reruns."""
    out = tmp_path / "exp"
    doc = _doc(out, data, hgnn={**HGNN, "epochs": 1})
    run_experiment(read_experiment(doc), quiet=True)
    _kill(_toml(tmp_path / "e.toml", doc), f"{point}@1", "--force", "graph")
    done = run_experiment(read_experiment(doc), quiet=True)
    assert _ran(done) == ([] if point == "runner.finished" else ["hgnn", "export"])
    record = json.loads((out / "pipeline.json").read_text())
    assert "running" not in record and set(record["stages"]) == set(done)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "lock" not in p.name]


def test_an_edit_keeping_the_size_and_mtime_is_seen(data, tmp_path):
    own = tmp_path / "data"
    own.mkdir()
    for f in data.iterdir():
        (own / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "exp"
    doc = _doc(out, own, export={})
    doc.pop("hgnn"), doc.pop("export")
    first = run_experiment(read_experiment(doc), quiet=True)
    assert run_experiment(read_experiment(doc), quiet=True)["graph"]["cached"]
    inter = own / "interactions.csv"
    frame = pl.read_parquet(own / "interactions.parquet")
    frame.write_csv(inter)
    (own / "interactions.parquet").unlink()
    base = run_experiment(read_experiment(doc), quiet=True)
    assert _ran(base) == ["split", "graph"]  # a new file: rerun
    # 30 rows whose items have 9-character ids get each other's items: same size on disk
    lines = inter.read_text().splitlines()
    rows = [n for n, line in enumerate(lines) if n and len(line.split(",")[1]) == 9][:30]
    items = [lines[n].split(",")[1] for n in rows]
    for n, item in zip(rows, items[1:] + items[:1], strict=True):
        cols = lines[n].split(",")
        lines[n] = ",".join([cols[0], item, *cols[2:]])
    moved = lines
    stat = inter.stat()
    new = "\n".join(moved) + "\n"
    assert len(new) == stat.st_size and new != inter.read_text()
    inter.write_text(new)
    os.utime(inter, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even the mtime kept
    again = run_experiment(read_experiment(doc), quiet=True)
    assert _ran(again) == ["split", "graph"] and again["graph"]["key"] != base["graph"]["key"]
    assert first["graph"]["key"] != base["graph"]["key"]


def test_content_fingerprint_reads_a_file_again_only_when_it_changed(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    cache = HashCache()
    one = content_fingerprint(tmp_path, cache)
    assert cache.read_bytes == 1000
    assert content_fingerprint(tmp_path, cache) == one and cache.read_bytes == 1000
    (tmp_path / "a").write_bytes(b"y" * 1000)
    assert content_fingerprint(tmp_path, cache) != one and cache.read_bytes == 2000
    (tmp_path / ".a.tmp-1-ab").write_bytes(b"half")  # a writer's temporary: not content
    assert content_fingerprint(tmp_path, HashCache()) == content_fingerprint(tmp_path)


def test_force_reruns_what_depends_on_the_stage(data, tmp_path):
    doc = _doc(tmp_path / "exp", data, hgnn={**HGNN, "epochs": 1})
    run_experiment(read_experiment(doc), quiet=True)
    done = run_experiment(read_experiment(doc), force=("graph",), quiet=True)
    assert _ran(done) == ["graph", "hgnn", "export"]


def test_a_users_pipeline_json_and_inputs_are_never_written(data, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pipeline.json").write_text('{"steps": ["a", "b"]}\n')
    before = (mine / "pipeline.json").read_bytes()
    with pytest.raises(ContractError, match="is not the record of an audiograph experiment"):
        run_experiment(read_experiment(_doc(mine, data)), quiet=True)
    assert (mine / "pipeline.json").read_bytes() == before
    assert sorted(p.name for p in mine.iterdir()) == ["pipeline.json"]
    (mine / "pipeline.json").write_text('{"writer": "audiograph", "kind": "pipeline"}\n')
    with pytest.raises(ContractError, match="not the record"):  # no "stages"
        run_experiment(read_experiment(_doc(mine, data)), quiet=True)
    listing = sorted(p.name for p in data.iterdir())
    with pytest.raises(ContractError, match="lies inside the input"):
        run_experiment(read_experiment(_doc(data / "runs", data)), quiet=True)
    assert sorted(p.name for p in data.iterdir()) == listing  # no empty folder left


def test_a_second_runner_on_the_same_folder_is_refused(data, tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    with locked(out), pytest.raises(ContractError, match="another 'audiograph run'"):
        run_experiment(read_experiment(_doc(out, data)), quiet=True)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"experiment": "x"}, "[experiment] must be a table"),
        ({"experiment": {"out": 5}}, "out must be a folder path"),
        ({"experiment": {"out": "x", "data": 3}}, "data must be a path"),
    ],
)
def test_bad_experiment_tables_are_one_line_errors(doc, message):
    with pytest.raises(ContractError, match=re.escape(message)):
        read_experiment(doc)


def test_cli_out_without_stages_is_a_one_line_error(data, tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "pipeline.json").write_text("{}\n")
    res = subprocess.run(
        [*CLI, "run", str(_toml(tmp_path / "e.toml", _doc(out, data)))],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "not the record" in res.stderr


def test_progress_lines_while_a_stage_runs(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "PROGRESS_EVERY", 0.05)
    doc = _doc(tmp_path / "exp", data, hgnn={**HGNN, "epochs": 1})
    doc.pop("export")
    run_experiment(read_experiment(doc))
    err = capsys.readouterr().err
    assert "hgnn (3/3): running" in err and re.search(r"hgnn \(3/3\): \d+s elapsed", err)
    record = json.loads((tmp_path / "exp" / "pipeline.json").read_text())
    record["stages"]["hgnn"]["seconds"] = 900.0  # the last run's duration: an estimate
    (tmp_path / "exp" / "pipeline.json").write_text(json.dumps(record))
    run_experiment(read_experiment(doc), force=("hgnn",))
    assert re.search(r"about \d+(m\d\ds|s) left \(last run", capsys.readouterr().err)


def test_readers_put_back_an_output_a_killed_writer_left_aside(data, tmp_path):
    g = tmp_path / "g"
    build = [*CLI, "build-graph", str(data), "--out", str(g), "--encoder", "none", "--quiet"]
    assert subprocess.run(build, capture_output=True, env=ENV).returncode == 0
    manifest = (g / "manifest.json").read_bytes()
    killed = subprocess.run(
        [*build, "--top-k", "3"], capture_output=True, env={**ENV, CRASH_ENV: "swap"}
    )
    assert killed.returncode == -9 and not g.exists()  # between the two renames
    res = subprocess.run([*CLI, "info", str(g)], capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr
    assert (g / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]
