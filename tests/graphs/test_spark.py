"""``build-graph --engine spark`` builds exactly the polars graph (same nodes, edge sets and
weights per edge type) on the synthetic catalog, Last.fm and Douban, with the user cap,
top-k and min-users on and off; bad input gets the contract's one-line errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.numpy import load_file

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import build_graph
from audiograph.graphs.config import GraphConfig
from audiograph.graphs.spark import HAS_PYSPARK
from audiograph.graphs.store import load_graph

pytestmark = pytest.mark.skipif(
    not HAS_PYSPARK, reason="pyspark is not installed (pip install 'audiograph[spark]')"
)
NO_TEXT = GraphConfig(encoder="none")


def same_graph(a: Path, b: Path) -> None:
    ta, tb = load_file(str(a / "graph.safetensors")), load_file(str(b / "graph.safetensors"))
    assert sorted(ta) == sorted(tb)
    for key in ta:
        assert ta[key].shape == tb[key].shape and np.array_equal(ta[key], tb[key]), key
    assert pl.read_parquet(a / "nodes.parquet").equals(pl.read_parquet(b / "nodes.parquet"))


def both(data: Path, out: Path, cfg: GraphConfig) -> dict:
    m = build_graph(data, out / "polars", cfg, quiet=True)
    s = build_graph(data, out / "spark", dataclasses.replace(cfg, engine="spark"), quiet=True)
    same_graph(out / "polars", out / "spark")
    assert s["stats"]["interactions"] == m["stats"]["interactions"]
    return m


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "data"
    prepare_synthetic(out, users=400, items={"music": 200, "podcast": 100, "audiobook": 40})
    return out


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"user_cap": 0, "top_k": 0},
        {"user_cap": 5, "top_k": 3, "min_users": 2},
        {"user_cap": 4, "cap_by": "recent"},
        {"signals": ["stream"], "min_users": 3},
    ],
    ids=["defaults", "no-cap-no-topk", "cap-topk-min2", "recent", "signals"],
)
def test_synthetic_graph_equals_polars(synthetic, tmp_path, options):
    m = both(synthetic, tmp_path, dataclasses.replace(NO_TEXT, **options))
    assert m["num_edges"] > 0


def test_spark_edge_shards_load_to_the_polars_graph(synthetic, tmp_path):
    """With ``edge_shard_rows`` the driver streams Spark's range-partitioned directed edges
    into shards of at most that many edges; loaded, they are the polars graph."""
    cfg = dataclasses.replace(NO_TEXT, user_cap=5, top_k=3, min_users=2)
    whole = build_graph(synthetic, tmp_path / "polars", cfg, quiet=True)
    cfg = dataclasses.replace(cfg, engine="spark", edge_shard_rows=200)
    m = build_graph(synthetic, tmp_path / "spark", cfg, quiet=True)
    assert m["edge_types"] == whole["edge_types"] and len(m["edge_shards"]) >= 4
    a, b = load_graph(tmp_path / "polars"), load_graph(tmp_path / "spark")
    for et in a.edge_types:
        assert torch.equal(a[et].edge_index, b[et].edge_index), et
        assert torch.equal(a[et].edge_weight, b[et].edge_weight), et
    assert not list(tmp_path.glob(".spark-*"))  # the parts are gone


def test_lastfm_graph_equals_polars(data_root, tmp_path):
    prepare_lastfm(data_root / "lastfm-hetrec-2k", tmp_path / "data")
    both(tmp_path / "data", tmp_path / "a", dataclasses.replace(NO_TEXT, min_users=2, top_k=20))


def test_douban_graph_equals_polars(data_root, tmp_path):
    prepare_douban(data_root / "douban-music-book", tmp_path / "data")
    both(tmp_path / "data", tmp_path / "a", dataclasses.replace(NO_TEXT, user_cap=50))


def test_bad_interactions_are_the_contracts_one_line_errors(synthetic, tmp_path):
    data = tmp_path / "bad"
    data.mkdir()
    pl.read_parquet(synthetic / "items.parquet").write_parquet(data / "items.parquet")
    inter = pl.read_parquet(synthetic / "interactions.parquet")
    spark = dataclasses.replace(NO_TEXT, engine="spark")
    row7 = pl.int_range(pl.len()) == 7
    bad = inter.with_columns(weight=pl.when(row7).then(-1.0).otherwise(pl.col("weight")))
    bad.write_parquet(data / "interactions.parquet")
    with pytest.raises(
        ContractError,
        match=r"interactions.parquet, column 'weight': weight must "
        r"be a finite number >= 0 \(example row: weight=-1.0",
    ):
        build_graph(data, tmp_path / "g", spark, quiet=True)
    unknown = inter.with_columns(
        item_id=pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("nope"))
        .otherwise(pl.col("item_id"))
    )
    unknown.write_parquet(data / "interactions.parquet")
    with pytest.raises(ContractError, match="1 rows reference item_ids not in the items table"):
        build_graph(data, tmp_path / "g", spark, quiet=True)
    kept = build_graph(
        data, tmp_path / "g", dataclasses.replace(spark, drop_unknown=True), quiet=True
    )
    assert kept["stats"]["dropped_unknown"]["interactions"] == 1
    with pytest.raises(ContractError, match="signal 'nope' does not occur"):
        cfg = dataclasses.replace(spark, signals=["nope"], drop_unknown=True)
        build_graph(data, tmp_path / "g2", cfg, quiet=True)
    assert not (tmp_path / "g2").exists()


def test_a_url_input_is_read_by_spark_and_gives_the_same_graph(synthetic, tmp_path):
    """``file://`` (like ``s3a://`` / ``hdfs://`` on a cluster): Spark reads both tables;
    the items still pass the contract's checks."""
    build_graph(synthetic, tmp_path / "polars", NO_TEXT, quiet=True)
    url = f"file://{synthetic.absolute()}"
    m = build_graph(
        url, tmp_path / "spark", dataclasses.replace(NO_TEXT, engine="spark"), quiet=True
    )
    same_graph(tmp_path / "polars", tmp_path / "spark")
    assert m["dataset"] == url


def test_csv_tables_at_a_url_give_the_same_graph(synthetic, tmp_path):
    """items.csv / interactions.csv (every column text, tags ``|``-joined) at a URL: Spark
    finds them through its file system and the contract parses them as the polars path."""
    csv = tmp_path / "csv"
    csv.mkdir()
    items = pl.read_parquet(synthetic / "items.parquet")
    items.with_columns(tags=pl.col("tags").list.join("|")).write_csv(csv / "items.csv")
    inter = pl.read_parquet(synthetic / "interactions.parquet")
    inter.drop("ts").write_csv(csv / "interactions.csv")
    build_graph(csv, tmp_path / "polars", NO_TEXT, quiet=True)
    spark = dataclasses.replace(NO_TEXT, engine="spark")
    build_graph(f"file://{csv.absolute()}", tmp_path / "spark", spark, quiet=True)
    same_graph(tmp_path / "polars", tmp_path / "spark")


def test_spark_without_pandas_names_the_extra(synthetic, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ContractError, match=r"needs pandas: pip install 'audiograph\[spark\]'"):
        build_graph(synthetic, tmp_path / "g", dataclasses.replace(NO_TEXT, engine="spark"))
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_one_line_on_stderr_without_spark_logs(synthetic, tmp_path):
    """A fresh Spark (its own process): neither Spark's log nor the failed task's Python and
    Java stack traces reach the terminal, only the contract's line."""
    data = tmp_path / "bad"
    data.mkdir()
    pl.read_parquet(synthetic / "items.parquet").write_parquet(data / "items.parquet")
    inter = pl.read_parquet(synthetic / "interactions.parquet")
    row5 = pl.int_range(pl.len()) == 5
    bad = inter.with_columns(weight=pl.when(row5).then(float("inf")).otherwise(pl.col("weight")))
    bad.write_parquet(data / "interactions.parquet")
    env = {k: v for k, v in os.environ.items() if k != "AUDIOGRAPH_DEBUG"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "audiograph",
            "build-graph",
            str(data),
            "--out",
            str(tmp_path / "g"),
            "--engine",
            "spark",
            "--encoder",
            "none",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 2, res.stderr
    line = "error: interactions.parquet, column 'weight': weight must be a finite number >= 0"
    assert res.stderr.startswith(f"{line} (example row: weight=inf"), res.stderr
    assert res.stderr.count("\n") == 1, res.stderr
    assert not (tmp_path / "g").exists()


def test_padded_csv_header_reads_as_the_polars_engine_reads_it(synthetic, tmp_path):
    """``user_id, item_id, weight`` (spaces after the commas): both engines strip the names
    and, in such a file, the values; a name given twice is refused."""
    data = tmp_path / "padded"
    data.mkdir()
    pl.read_parquet(synthetic / "items.parquet").write_parquet(data / "items.parquet")
    inter = pl.read_parquet(synthetic / "interactions.parquet")
    rows = [", ".join(map(str, r)) for r in inter.select("user_id", "item_id", "weight").rows()]
    (data / "interactions.csv").write_text("\n".join(["user_id, item_id, weight", *rows, "", ""]))
    both(data, tmp_path / "a", NO_TEXT)
    (data / "interactions.csv").write_text("user_id, item_id, weight, weight\nu, i, 1, 2\n")
    with pytest.raises(ContractError, match="column 'weight': the header names this column twice"):
        build_graph(data, tmp_path / "g", dataclasses.replace(NO_TEXT, engine="spark"))
