"""The pipeline runner: stage order, caching by settings and inputs, --until / --force,
one-line errors, and the runner never losing an output it replaces."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from tiny_settings import TINY_HGNN

import audiograph.pipeline.stages as stages
from audiograph.core.errors import ContractError
from audiograph.pipeline.runner import read_experiment, run_experiment
from audiograph.pipeline.stages import NAMES

TINY = {
    "prepare": {
        "adapter": "synthetic",
        "users": 300,
        "items": {"music": 200, "podcast": 100, "audiobook": 40},
    },
    "split": {},
    "graph": {},
    "hgnn": {"epochs": 1, **TINY_HGNN},
    "export": {},
    "twotower": {"epochs": 1, "tower_dims": [16], "val_type": "audiobook"},
    "baseline": {},
    "evaluate": {"target_type": "audiobook", "models": ["popularity", "2t", "2t-hgnn"]},
}


def _exp(out, **changes):
    doc = {"experiment": {"out": str(out), "seed": 0}, **json.loads(json.dumps(TINY))}
    for stage, values in changes.items():
        doc[stage].update(values)
    return read_experiment(doc)


def _ran(done):
    return [name for name, d in done.items() if not d["cached"]]


def test_caching_reruns_only_what_a_change_reaches(tmp_path):
    out = tmp_path / "exp"
    first = run_experiment(_exp(out), quiet=True)
    assert list(first) == NAMES[: NAMES.index("evaluate") + 1]
    assert _ran(first) == list(first)
    report = json.loads((out / "evaluate" / "report.json").read_text())
    assert list(report["results"]) == ["popularity", "2t", "2t-hgnn"] and not report["skipped"]
    base = json.loads((out / "baseline" / "config.json").read_text())["train"]
    main = json.loads((out / "twotower" / "config.json").read_text())["train"]
    assert base == {**main, "use_hgnn": False}  # the plain 2T: the two-tower's settings
    again = run_experiment(_exp(out), quiet=True)
    assert _ran(again) == [] and {k: v["key"] for k, v in again.items()} == {
        k: v["key"] for k, v in first.items()
    }
    changed = run_experiment(_exp(out, hgnn={"epochs": 2}), quiet=True)
    assert _ran(changed) == ["hgnn", "export", "twotower", "evaluate"]  # not the baseline
    record = json.loads((out / "pipeline.json").read_text())
    assert record["stages"]["hgnn"]["settings"]["epochs"] == 2
    assert not list(tmp_path.glob("exp/.*stale*"))
    until = run_experiment(
        _exp(out, hgnn={"epochs": 2}), until="graph", force=("graph",), quiet=True
    )
    assert list(until) == ["prepare", "split", "graph"] and _ran(until) == ["graph"]


def test_a_failing_stage_restores_the_output_it_replaces(tmp_path, monkeypatch):
    out = tmp_path / "exp"
    run_experiment(_exp(out), quiet=True)
    before = (out / "evaluate" / "report.json").read_bytes()

    def broken(*args, **kwargs):
        raise ContractError("boom")

    monkeypatch.setattr(stages, "evaluation", broken)
    with pytest.raises(ContractError, match="boom"):
        run_experiment(_exp(out, evaluate={"k": 5}), quiet=True)
    assert (out / "evaluate" / "report.json").read_bytes() == before
    assert [p.name for p in out.glob(".*")] == [".pipeline.lock"]  # no leftovers


def test_foreign_output_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "exp"
    (out / "prepare").mkdir(parents=True)
    (out / "prepare" / "mine.txt").write_text("keep")
    with pytest.raises(ContractError, match="is not this experiment's dataset output"):
        run_experiment(_exp(out), quiet=True)
    assert (out / "prepare" / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"experiment": {"out": "x"}, "grpah": {}}, "unknown stage [grpah]"),
        (
            {"experiment": {"out": "x"}, "prepare": {"adapter": "synthetic", "usres": 3}},
            "unknown setting 'usres'",
        ),
        ({"experiment": {"out": "x"}, "prepare": {"adapter": "x"}}, "adapter must be one of"),
        (
            {
                "experiment": {"out": "x"},
                "prepare": {"adapter": "synthetic"},
                "hgnn": {"epochs": 1},
            },
            "stage [hgnn] needs [graph]",
        ),
        (
            {
                "experiment": {"out": "x"},
                "prepare": {"adapter": "synthetic"},
                "split": {},
                "graph": {"min_users": "two"},
            },
            "option 'min_users' must be int",
        ),
        ({"experiment": {}}, "'out' (the output folder) is required"),
        ({"experiment": {"out": "x", "given": {"grpah": "g"}}}, "unknown stage 'grpah'"),
        ({"experiment": {"out": "x", "given": {"prepare": "."}}}, "not a dataset directory"),
    ],
)
def test_bad_experiments_are_one_line_errors(doc, message):
    with pytest.raises(ContractError, match=re.escape(message)):
        read_experiment(doc)


def test_cli_run_exit_codes(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nout = "x"\n[grpah]\n')
    res = subprocess.run(
        [sys.executable, "-m", "audiograph", "run", str(bad)], capture_output=True, text=True
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "grpah" in res.stderr


def test_without_a_split_the_graph_is_built_on_the_whole_dataset(tmp_path):
    doc = {
        "experiment": {"out": str(tmp_path / "exp"), "seed": 0},
        "prepare": TINY["prepare"],
        "graph": {"encoder": "none"},
    }
    done = run_experiment(read_experiment(doc), quiet=True)
    assert list(done) == ["prepare", "graph"]
    manifest = json.loads((tmp_path / "exp" / "graph" / "manifest.json").read_text())
    data = json.loads((tmp_path / "exp" / "prepare" / "manifest.json").read_text())
    assert sum(manifest["node_types"].values()) == data["counts"]["items"]


def test_given_outputs_stand_in_for_their_stages(tmp_path):
    """``[experiment.given]``: existing outputs (checked by kind) feed later stages, and
    their fingerprints key the cache like a stage's output would."""
    chain = tmp_path / "chain"
    run_experiment(_exp(chain), until="export", quiet=True)
    doc = {
        "experiment": {
            "out": str(tmp_path / "later"),
            "seed": 0,
            "given": {"split": str(chain / "split"), "export": str(chain / "export")},
        },
        "semantic_ids": {"levels": 1, "codebook_size": 4},
    }
    done = run_experiment(read_experiment(doc), quiet=True)
    assert list(done) == ["semantic_ids"] and not done["semantic_ids"]["cached"]
    assert run_experiment(read_experiment(doc), quiet=True)["semantic_ids"]["cached"]
    with pytest.raises(ContractError, match=re.escape("stage [generative] needs [split]")):
        read_experiment(
            {
                "experiment": {"out": "x", "given": {"export": str(chain / "export")}},
                "semantic_ids": {},
                "generative": {},
            }
        )
    with pytest.raises(ContractError, match="both a stage and a given output"):
        read_experiment({**doc, "export": {}})
