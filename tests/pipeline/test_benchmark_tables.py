"""benchmarks/README.md's result tables are generated from benchmarks/results/*.json."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

# benchmarks/ holds scripts, not an installed package: load them by their paths (tables.py
# imports its siblings speed_tables.py and generative_tables.py by name)
for _name in ("speed_tables", "generative_tables", "tables"):
    _path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{_name}.py"
    _spec = importlib.util.spec_from_file_location(_name, _path)
    tables = importlib.util.module_from_spec(_spec)
    sys.modules[_name] = tables
    _spec.loader.exec_module(tables)
for _name in ("speed_tables", "generative_tables", "tables"):
    sys.modules.pop(_name)  # imported; other tests load these scripts afresh
README, RESULTS, quality_table, render = (
    tables.README,
    tables.RESULTS,
    tables.quality_table,
    tables.render,
)


def test_readme_tables_are_generated_from_the_result_files():
    text = README.read_text()
    assert render(text) == text, "run: python benchmarks/tables.py"
    for f in sorted(Path(RESULTS).glob("quality-*.json")):
        name = f.stem.removeprefix("quality-")
        assert f"<!-- quality:{name} -->" in text, f"{f.name} has no table in README.md"


def test_quality_table_shows_means_intervals_and_the_paired_difference(tmp_path):
    out = json.loads((Path(RESULTS) / "quality-synthetic.json").read_text())
    table = quality_table(out)
    hr = out["results"]["2t-hgnn"]["hr@10"]
    assert f"{hr['mean']:.3f} ± {hr['ci95']:.3f}" in table
    d = out["2t-hgnn_vs_2t"]["all"]["diff"]
    assert "| 2t-hgnn vs 2t, HR@10 (paired) |" in table
    assert f"| all | {d['mean']:.3f} ± {d['ci95']:.3f}" in table


def _ci(mean, ci=0.01):
    return {"mean": mean, "ci95": ci}


def test_quality_table_renders_item_slices_comparisons_and_bootstraps():
    row = {k: _ci(0.5) for k in tables.KEYS} | {
        "users": 9,
        "cold": {"hr@10": _ci(0.4), "users": [3, 3]},
    }
    new = row | {
        "new_items": {"recall@10": _ci(0.125), "pairs": [7, 8]},
        "rare_items": {"recall@10": None, "pairs": [0, 0]},
    }
    diff = {"all": {"diff": _ci(0.05, 0.02), "ratio": _ci(1.1, 0.05)}}
    boot = [{"seed": 0, "diff": 0.05, "lo": -0.01, "hi": 0.11, "users": 9}]
    out = {
        "target_type": "book",
        "seeds": [0, 1],
        "seconds": 60,
        "machine": "m",
        "results": {"2t-hgnn": new, "oracle": row},
        "2t-hgnn_vs_2t": diff,
        "2t-hgnn_vs_lightgcn": diff,
        "bootstrap": {"draws": 1000, "2t-hgnn_vs_lightgcn": boot},
        "split": {},
        "config": {"set": {"hgnn": {"epochs": 6}}},
    }
    table = quality_table(out)
    lines = table.splitlines()
    assert lines[2].endswith("| new-item R@10 (pairs) | rare-item R@10 (pairs) |")
    assert lines[3].count("|---") == lines[2].count("|") - 1 == 11
    assert lines[4].endswith("| 0.125 ± 0.010 (7) | – (0) |")
    assert lines[5].endswith("| 0.400 ± 0.010 (3) | – (0) | – (–) | – (–) |")  # no slices
    assert "| 2t-hgnn vs lightgcn, HR@10 (paired) | difference | ratio |" in table
    assert "| all | 0.050 ± 0.020 | 1.100 ± 0.050 |" in table
    assert "| 2t-hgnn vs lightgcn | +0.050 [-0.010, +0.110] | – |" in table
    assert "(1000 resamples)" in table
    assert "except hgnn.epochs=6." in table


def test_quality_tables_of_older_results_keep_their_columns():
    out = json.loads((Path(RESULTS) / "quality-douban.json").read_text())
    table = quality_table(out)
    assert "new-item" not in table and "bootstrap" not in table and "Settings" not in table
