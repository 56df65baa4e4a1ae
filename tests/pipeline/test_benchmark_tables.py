"""benchmarks/README.md's result tables are generated from benchmarks/results/*.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

# benchmarks/ holds scripts, not an installed package: load the script by its path
_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tables.py"
_spec = importlib.util.spec_from_file_location("benchmark_tables", _SCRIPT)
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)
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
    out = json.loads((Path(RESULTS) / "quality-lastfm-vertical.json").read_text())
    table = quality_table(out)
    hr = out["results"]["2t-hgnn"]["hr@10"]
    assert f"{hr['mean']:.3f} ± {hr['ci95']:.3f}" in table
    d = out["2t-hgnn_vs_2t"]["all"]["diff"]
    assert "| 2t-hgnn vs 2t, HR@10 (paired) |" in table
    assert f"| all | {d['mean']:.3f} ± {d['ci95']:.3f}" in table
