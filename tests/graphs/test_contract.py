"""Every validation rule of the data contract, through the Python API and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.contract import read_dataset

ITEMS = pl.DataFrame(
    {
        "item_id": ["m1", "m2", "p1", "b1"],
        "item_type": ["music", "music", "podcast", "audiobook"],
        "title": ["Blue Train", "Kind of Blue", "History Hour", ""],
        "description": ["jazz album", None, "weekly history", None],
        "tags": [["jazz", "sax"], ["jazz"], [], None],
        "year": [1957, 1959, 2020, 2021],
    }
)
INTER = pl.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u2"],
        "item_id": ["m1", "m2", "p1", "m1", "p1", "b1"],
        "weight": [3.0, 1.0, 1.0, 2.0, 1.0, 5.0],
        "signal": ["stream", "stream", "follow", None, "stream", "stream"],
        "ts": [1_600_000_000, None, 1_600_000_100, 1_600_000_200, None, None],
    }
)


def write(tmp: Path, items=ITEMS, inter=INTER, fmt: str = "parquet", **extra) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for name, df in [("items", items), ("interactions", inter), *extra.items()]:
        if df is None:
            continue
        if isinstance(df, bytes):
            (tmp / f"{name}.csv").write_bytes(df)
        elif fmt == "csv":
            df.write_csv(tmp / f"{name}.csv")
        else:
            df.write_parquet(tmp / f"{name}.parquet")
    return tmp


def error_of(path: Path, **kw) -> str:
    with pytest.raises(ContractError) as exc:
        read_dataset(path, **kw)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_valid_dataset_is_normalized(tmp_path):
    ds = read_dataset(write(tmp_path))
    assert ds.item_types == ["music", "podcast", "audiobook"]
    assert ds.items["tags"].to_list() == [["jazz", "sax"], ["jazz"], [], []]
    assert ds.items["description"].to_list() == ["jazz album", "", "weekly history", ""]
    assert "year" in ds.items.columns  # extra metadata kept
    assert ds.interactions["signal"].to_list()[3] == "stream"  # default signal
    assert ds.interactions.schema["ts"] == pl.Int64


def test_csv_pipe_tags_default_weight_and_iso_ts(tmp_path):
    items = b"item_id,item_type,title,tags\na,music,A,rock| pop |\nb,book,,\n"
    inter = b"user_id,item_id,ts\nu,a,2020-01-01T00:00:00\nu,b,5\n"
    ds = read_dataset(write(tmp_path, items=items, inter=inter))
    assert ds.items["tags"].to_list() == [["rock", "pop"], []]
    assert ds.interactions["weight"].to_list() == [1.0, 1.0]
    assert ds.interactions["ts"].to_list() == [1577836800, 5]


@pytest.mark.parametrize(
    "table,column",
    [
        ("items", "item_id"),
        ("items", "item_type"),
        ("items", "title"),
        ("interactions", "user_id"),
        ("interactions", "item_id"),
    ],
)
def test_missing_column(tmp_path, table, column):
    items, inter = ITEMS, INTER
    if table == "items":
        items = ITEMS.drop(column)
    else:
        inter = INTER.drop(column)
    msg = error_of(write(tmp_path, items, inter))
    assert f"{table}.parquet" in msg and f"'{column}'" in msg and "missing required" in msg


def test_mistyped_item_id(tmp_path):
    items = ITEMS.with_columns(pl.Series("item_id", [1, 2, 3, 4]))
    msg = error_of(write(tmp_path, items, None))
    assert "items.parquet, column 'item_id'" in msg and "expected a string" in msg
    assert "row 0" in msg


def test_mistyped_weight_in_csv(tmp_path):
    inter = b"user_id,item_id,weight\nu1,m1,1\nu1,m2,lots\n"
    msg = error_of(write(tmp_path, inter=inter))
    assert "interactions.csv, column 'weight'" in msg and "'lots'" in msg and "row 1" in msg


def test_mistyped_tags(tmp_path):
    msg = error_of(write(tmp_path, ITEMS.with_columns(tags=pl.lit(3)), None))
    assert "column 'tags'" in msg


def test_bad_timestamp(tmp_path):
    inter = b"user_id,item_id,ts\nu1,m1,yesterday\n"
    msg = error_of(write(tmp_path, inter=inter))
    assert "column 'ts'" in msg and "yesterday" in msg


def test_duplicate_item_id(tmp_path):
    items = ITEMS.with_columns(pl.Series("item_id", ["m1", "m2", "m1", "b1"]))
    msg = error_of(write(tmp_path, items, None))
    assert "duplicate item_id" in msg and "'m1'" in msg and "row 0" in msg


def test_null_and_empty_ids(tmp_path):
    items = ITEMS.with_columns(pl.Series("item_type", ["music", None, "a", "b"]))
    assert "missing value" in error_of(write(tmp_path / "a", items, None))
    items = ITEMS.with_columns(pl.Series("item_id", ["m1", " ", "p1", "b1"]))
    assert "empty value" in error_of(write(tmp_path / "b", items, None))


def test_unknown_items_error_or_drop(tmp_path):
    inter = pl.concat([INTER, INTER.head(2).with_columns(item_id=pl.lit("ghost"))])
    path = write(tmp_path, inter=inter)
    msg = error_of(path)
    assert "2 rows reference item_ids not in the items table" in msg
    assert "'ghost'" in msg and "row 6" in msg and "--drop-unknown" in msg
    ds = read_dataset(path, drop_unknown=True)
    assert ds.dropped_unknown["interactions"] == 2
    assert ds.interactions.height == INTER.height


def test_unknown_items_in_queries(tmp_path):
    q = pl.DataFrame({"query": ["jazz", "x"], "item_id": ["m1", "nope"]})
    path = write(tmp_path, queries=q)
    assert "queries.parquet" in error_of(path)
    assert read_dataset(path, drop_unknown=True).dropped_unknown["queries"] == 1


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_weights(tmp_path, bad):
    inter = INTER.with_columns(pl.Series("weight", [1.0, 1.0, bad, 1.0, 1.0, 1.0]))
    msg = error_of(write(tmp_path, inter=inter))
    assert "column 'weight'" in msg and ">= 0" in msg and "row 2" in msg


@pytest.mark.parametrize("table", ["items", "interactions", "users", "queries"])
def test_empty_tables(tmp_path, table):
    frames = {
        "items": ITEMS,
        "inter": INTER,
        "users": pl.DataFrame({"user_id": ["u1"]}),
        "queries": pl.DataFrame({"query": ["q"], "item_id": ["m1"]}),
    }
    key = "inter" if table == "interactions" else table
    frames[key] = frames[key].head(0)
    msg = error_of(
        write(
            tmp_path,
            frames["items"],
            frames["inter"],
            users=frames["users"],
            queries=frames["queries"],
        )
    )
    assert msg == f"{table}.parquet: table is empty"


def test_undecodable_csv_text(tmp_path):
    items = "item_id,item_type,title\na,music,Caf\xe9 del Mar\n".encode("latin-1")
    msg = error_of(write(tmp_path, items=items, inter=None))
    assert "items.csv, column 'title'" in msg and "not UTF-8" in msg and "row 0" in msg


def test_undecodable_parquet_binary(tmp_path):
    items = ITEMS.with_columns(pl.Series("title", [b"ok", b"\xff\xfe", b"x", b"y"]))
    msg = error_of(write(tmp_path, items, None))
    assert "column 'title'" in msg and "not UTF-8" in msg and "row 1" in msg


def test_duplicate_user_and_missing_dir(tmp_path):
    users = pl.DataFrame({"user_id": ["u1", "u1"], "age": [3, 4]})
    assert "duplicate user_id" in error_of(write(tmp_path, users=users))
    assert "not a dataset directory" in error_of(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "no items.parquet or items.csv" in error_of(tmp_path / "empty")


def test_corrupt_parquet(tmp_path):
    write(tmp_path)
    (tmp_path / "interactions.parquet").write_bytes(b"not parquet at all")
    assert error_of(tmp_path).startswith("interactions.parquet: cannot be read")


USERS = pl.DataFrame({"user_id": ["u1", "u2"], "age": [30, 40]})
QUERIES = pl.DataFrame({"query": ["jazz", "history"], "item_id": ["m1", "p1"]})


@pytest.mark.parametrize("blank", ["", "  "])
@pytest.mark.parametrize(
    "table,column",
    [
        ("interactions", "user_id"),
        ("interactions", "item_id"),
        ("users", "user_id"),
        ("queries", "query"),
        ("queries", "item_id"),
    ],
)
def test_empty_ids_and_queries(tmp_path, table, column, blank):
    frames = {"interactions": INTER, "users": USERS, "queries": QUERIES}
    frames[table] = frames[table].with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit(blank))
        .otherwise(pl.col(column))
        .alias(column)
    )
    msg = error_of(
        write(
            tmp_path, inter=frames["interactions"], users=frames["users"], queries=frames["queries"]
        )
    )
    assert msg.startswith(
        f"{table}.parquet, column '{column}': empty value (row 1: {column}={blank!r}"
    )


def test_user_columns_named_like_helpers(tmp_path):
    # extra columns "_row"/"_known" are plain features: kept, and no check is bypassed
    ghost = INTER.head(1).with_columns(item_id=pl.lit("ghost"))
    inter = pl.concat([INTER, ghost]).with_columns(_known=pl.lit(True), _row=pl.lit(-1))
    path = write(tmp_path / "a", inter=inter)
    msg = error_of(path)
    assert msg.startswith("interactions.parquet, column 'item_id': 1 rows reference item_ids")
    assert "(row 6: item_id='ghost', user_id='u1'" in msg
    ds = read_dataset(path, drop_unknown=True)
    assert ds.dropped_unknown["interactions"] == 1
    assert ds.interactions.columns[-2:] == ["_known", "_row"]
    assert ds.interactions["_row"].to_list() == [-1] * INTER.height

    users = pl.DataFrame({"user_id": ["u1", "u2", "u1"], "_row": [7, 8, 9], "_known": [1, 2, 3]})
    msg = error_of(write(tmp_path / "b", users=users))
    assert msg == (
        "users.parquet, column 'user_id': duplicate user_id (row 0: user_id='u1', _row=7, _known=1)"
    )
    ds = read_dataset(write(tmp_path / "c", users=users.head(2)))
    assert ds.users["_row"].to_list() == [7, 8]

    items = ITEMS.with_columns(pl.Series("item_id", ["m1", "m2", "m2", "b1"]), _row=pl.lit(0))
    msg = error_of(write(tmp_path / "d", items, None))
    assert "duplicate item_id (row 1: item_id='m2'" in msg


@pytest.mark.parametrize(
    "ts",
    [
        pl.Series("ts", [1.0, float("inf"), 2.0, 3.0, 4.0, 5.0]),
        pl.Series("ts", [1.0, float("-inf"), 2.0, 3.0, 4.0, 5.0]),
        pl.Series("ts", [1.0, float("nan"), 2.0, 3.0, 4.0, 5.0]),
        pl.Series("ts", [1.0, 1e30, 2.0, 3.0, 4.0, 5.0]),
        pl.Series("ts", [1, 2**64 - 1, 2, 3, 4, 5], dtype=pl.UInt64),
    ],
)
def test_non_finite_or_overflowing_timestamp(tmp_path, ts):
    msg = error_of(write(tmp_path, inter=INTER.with_columns(ts)))
    assert msg.startswith(
        "interactions.parquet, column 'ts': timestamp must be finite unix seconds within the "
        f"int64 range (row 1: ts={ts[1]!r}"
    )


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "1e30", "99999999999999999999"])
def test_non_finite_or_overflowing_timestamp_in_csv(tmp_path, bad):
    inter = f"user_id,item_id,ts\nu1,m1,1600000000.0\nu1,m2,{bad}\n".encode()
    msg = error_of(write(tmp_path, inter=inter))
    assert msg.startswith("interactions.csv, column 'ts': not unix seconds")
    assert f"(row 1: ts='{bad}'" in msg


def test_float_seconds_in_csv(tmp_path):
    # e.g. written by pandas from a float column: 1600000000.0
    inter = b"user_id,item_id,ts\nu1,m1,1600000000.0\nu1,m2,1e3\nu2,m1,\n"
    ds = read_dataset(write(tmp_path, inter=inter))
    assert ds.interactions["ts"].to_list() == [1_600_000_000, 1000, None]


@pytest.mark.parametrize("bad", ["music__live", "music_", "__"])
def test_item_type_that_breaks_edge_type_names(tmp_path, bad):
    items = ITEMS.with_columns(pl.Series("item_type", ["music", "music", bad, "audiobook"]))
    msg = error_of(write(tmp_path, items, None))
    assert msg.startswith(
        "items.parquet, column 'item_type': item_type must not contain '__' or end with '_'"
    )
    assert f"(row 2: item_type={bad!r}, item_id='p1'" in msg


@pytest.mark.parametrize(
    "csv,expected",
    [
        (
            b"item_id,item_type,title\na,music,A\nb,music,B,extra\n",
            "items.csv, line 3: cannot parse CSV (4 fields, the header has 3): 'b,music,B,extra'",
        ),
        (  # a quoted field over two lines: lines, not rows, are counted
            b'item_id,item_type,title\na,music,"two\nlines"\nb,music,B,extra\n',
            "items.csv, line 4: cannot parse CSV (4 fields, the header has 3): 'b,music,B,extra'",
        ),
        (
            b'item_id,item_type,title\na,music,A\nb,music,"B\nc,music,C\n',
            "items.csv, line 3: cannot parse CSV (unexpected end of data): 'b,music,\"B'",
        ),
        (
            b"item_id,item_type,titl\xe9\na,music,A\n",
            "items.csv, line 1: undecodable header (not UTF-8): 'item_id,item_type,titl\ufffd'",
        ),
    ],
    ids=["extra-field", "multiline-record", "open-quote", "bad-header"],
)
def test_csv_parse_errors_name_the_line(tmp_path, csv, expected):
    assert error_of(write(tmp_path, items=csv, inter=None)) == expected


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "from audiograph.pipeline.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path):
    inter = INTER.with_columns(pl.Series("weight", [1.0, -2.0, 1, 1, 1, 1]))
    data = write(tmp_path / "data", inter=inter)
    out = tmp_path / "graph"
    res = run_cli("build-graph", str(data), "--out", str(out), "--encoder", "none")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: interactions.parquet")
    assert "Traceback" not in res.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no temp dir left behind


def test_cli_refuses_to_overwrite_foreign_directory(tmp_path):
    data = write(tmp_path / "data")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("keep me")
    res = run_cli("build-graph", str(data), "--out", str(out), "--encoder", "none", "--quiet")
    assert res.returncode == 2 and "not written by audiograph" in res.stderr
    assert (out / "thesis.txt").read_text() == "keep me"
