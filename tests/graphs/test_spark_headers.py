"""A CSV table given as a folder of part files (as Spark writes one): every part's header is
checked, not only the first one's (Spark would map the other parts' columns by position)."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import build_graph
from audiograph.graphs.config import GraphConfig
from audiograph.graphs.csv_parts import first_lines, same_header
from audiograph.graphs.spark import HAS_PYSPARK
from audiograph.pipeline.cli import main

HEADER = "user_id,item_id,weight"


def parts(folder: Path, *headers: str) -> Path:
    """``folder/interactions.csv/part-0000i.csv`` with the given header lines, one row each."""
    table = folder / "interactions.csv"
    table.mkdir(parents=True)
    for i, header in enumerate(headers):
        (table / f"part-{i:05d}.csv").write_text(f"{header}\nu{i},i{i},1\n")
    return table


def test_the_same_header_in_every_part_passes(tmp_path):
    table = parts(tmp_path, "\ufeff" + HEADER, "user_id, item_id, weight", HEADER)
    (table / "_SUCCESS").write_text("")  # Spark's marker files are not parts
    (table / ".part-00000.csv.crc").write_bytes(b"\x00\x01")
    (table / "part-00009.csv").write_text("")  # an empty part has no header to check
    with gzip.open(table / "part-00010.csv.gz", "wt") as f:
        f.write(f"{HEADER}\nu,i,1\n")
    lines = first_lines(table)
    assert [name for name, _ in lines] == [
        *(f"interactions.csv/part-0000{i}.csv" for i in range(3)),
        "interactions.csv/part-00009.csv",
        "interactions.csv/part-00010.csv.gz",
    ]
    assert same_header(lines, "interactions.csv") == HEADER


@pytest.mark.parametrize(
    ("second", "column", "problem"),
    [
        ("user_id,weight,item_id", "weight", "column 2 of this part's header, where "),
        ("user_id,item_id", "weight", "missing from this part's header ("),
        ("user_id,item_id,weight,ts", "ts", "column 4 of this part's header, where "),
    ],
    ids=["reordered", "missing", "extra"],
)
def test_a_part_with_another_header_is_a_one_line_error(tmp_path, second, column, problem):
    table = parts(tmp_path, HEADER, second)
    with pytest.raises(ContractError) as err:
        same_header(first_lines(table), "interactions.csv")
    msg = str(err.value)
    assert msg.startswith(f"interactions.csv/part-00001.csv, column '{column}': {problem}"), msg
    assert "interactions.csv/part-00000.csv" in msg and "\n" not in msg


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("syn") / "data"
    prepare_synthetic(out, users=60, items={"music": 20, "podcast": 10, "audiobook": 5})
    return pl.read_parquet(out / "items.parquet")


@pytest.mark.skipif(not HAS_PYSPARK, reason="pyspark is not installed")
def test_build_graph_on_spark_refuses_a_mismatching_part_with_exit_2(items, tmp_path, capsys):
    """End to end through the CLI: exit 2, one line naming the part and the column, and
    no graph written; at a URL (read through Spark's file system) the same error."""
    data = tmp_path / "data"
    data.mkdir()
    items.write_parquet(data / "items.parquet")
    ids = items["item_id"].to_list()
    table = data / "interactions.csv"
    table.mkdir()
    (table / "part-00000.csv").write_text(f"{HEADER}\nu1,{ids[0]},1\nu2,{ids[0]},1\n")
    (table / "part-00001.csv").write_text(f"user_id,weight,item_id\nu1,1,{ids[1]}\n")
    out = tmp_path / "g"
    with pytest.raises(SystemExit) as code:
        main(["build-graph", str(data), "--out", str(out), "--engine", "spark", "--quiet"])
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: interactions.csv/part-00001.csv, column 'weight': column 2 of this part's "
        "header, where interactions.csv/part-00000.csv has 'item_id'"
    ), err
    assert err.count("\n") == 1 and not out.exists()
    cfg = dataclasses.replace(GraphConfig(encoder="none"), engine="spark")
    with pytest.raises(ContractError, match=r"^interactions.csv/part-00001.csv, column 'weight'"):
        build_graph(f"file://{data.absolute()}", out, cfg, quiet=True)
    assert not out.exists()
    # the same parts with the same header build
    (table / "part-00001.csv").write_text(f"{HEADER}\nu1,{ids[1]},1\n")
    assert build_graph(data, out, cfg, quiet=True)["stats"]["interactions"] == 3
