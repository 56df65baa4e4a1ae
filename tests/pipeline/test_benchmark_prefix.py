"""benchmarks/prefix.py: the personal search inputs every row answers (a small split with
user tags, exact values) and the summary's ratios."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from audiograph.graphs.contract import write_dataset

SCRIPTS = ("seeded", "quality_stats", "quality", "generative_eval", "generative", "prefix")


@pytest.fixture(scope="module")
def bench(load_scripts) -> ModuleType:
    return load_scripts(*SCRIPTS)[-1]


def _side(path: Path, rows: list[tuple], queries: list[tuple]) -> None:
    items = pl.DataFrame({"item_id": list("abcd"), "item_type": "t", "title": list("ABCD")})
    inter = pl.DataFrame(
        rows,
        schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "tags": pl.List(pl.Utf8)},
        orient="row",
    )
    inter = inter.with_columns(signal=pl.lit("tag"), weight=pl.lit(1.0), ts=pl.lit(None, pl.Int64))
    path.mkdir()
    q = pl.DataFrame(queries, schema=["query", "item_id"], orient="row")
    write_dataset(path, items, inter, queries=q)


def test_personal_inputs_are_new_tag_assignments_of_training_users(bench, tmp_path):
    _side(
        tmp_path / "train",
        [
            ("u1", "a", ["rock"]),
            ("u1", "b", ["rock", "pop"]),
            ("u2", "c", ["pop"]),
            ("u3", "a", None),
        ],
        [("rock", "a"), ("rock", "b"), ("pop", "b"), ("pop", "c")],
    )
    # u1 gives "rock" to d (new) and to a again (a training triple); u2's "jazz" is not a
    # training query; u4 has no training interactions
    _side(
        tmp_path / "test",
        [
            ("u1", "d", ["rock"]),
            ("u1", "a", ["rock"]),
            ("u2", "d", ["jazz"]),
            ("u4", "a", ["rock"]),
        ],
        [("rock", "d")],
    )
    got = bench.personal_inputs(tmp_path, max_inputs=10, seed=0)
    assert (got["users"], got["queries"]) == (["u1"], ["rock"])
    assert got["rel"] == [{"d"}] and got["seen"] == [{"a", "b"}] and got["pairs"] == 2


def test_summary_ratios_are_per_seed(bench):
    def report(seed: int, plain: float, user: float) -> dict:
        row = {t: {"recall@10": x, "recall@30": x} for t, x in (("search", plain), ("rec", plain))}
        mine = {t: {"recall@10": user, "recall@30": user} for t in ("search", "rec")}
        mine |= {"trainable_parameters": 5, "training": {}, "p50_ms": {}, "tokens": {"rec": 2}}
        return {
            "seed": seed,
            "rows": {"gen": row | {"p50_ms": {}, "tokens": {"rec": 31}}, "gen+user:twotower": mine},
        }

    out = bench.summarize([report(0, 0.1, 0.2), report(1, 0.2, 0.2)])
    r = out["gen+user:twotower"]
    assert r["search_vs_gen"]["mean"] == pytest.approx(1.5) and r["seeds"] == 2
    assert r["rec"]["recall@10"]["mean"] == pytest.approx(0.2)
    assert out["gen"]["tokens"] == [{"rec": 31}, {"rec": 31}]
