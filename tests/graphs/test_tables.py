"""Reading a dataset table from CSV (``graphs/tables.py``): padded header names, blank
lines at the end and a column named twice."""

from __future__ import annotations

import pytest
from test_contract import error_of, write

from audiograph.graphs.contract import read_dataset

INTER = b"user_id,item_id,weight\nu1,m1,2\nu1,p1,1\n"


def test_a_header_with_spaces_after_the_commas_loads(tmp_path):
    items = b"item_id, item_type, title\nm1, music, Blue Train\np1, podcast, History Hour\n"
    ds = read_dataset(write(tmp_path, items=items, inter=b"user_id, item_id\nu1, m1\nu1, p1\n"))
    assert ds.items["item_type"].to_list() == ["music", "podcast"]
    assert ds.items["title"].to_list() == ["Blue Train", "History Hour"]
    assert ds.interactions["item_id"].to_list() == ["m1", "p1"]


@pytest.mark.parametrize("tail", [b"\n\n", b"\r\n\r\n", b"\n  \n\t\n", b""])
def test_blank_lines_at_the_end_are_ignored(tmp_path, tail):
    items = b"item_id,item_type,title\nm1,music,A\np1,podcast,B  \n" + tail
    ds = read_dataset(write(tmp_path, items=items, inter=INTER + tail))
    assert ds.items["item_id"].to_list() == ["m1", "p1"]
    assert ds.items["title"].to_list() == ["A", "B  "]  # an unpadded file keeps its values
    assert ds.interactions.height == 2


@pytest.mark.parametrize(
    "items, inter, expected",
    [
        (
            b"item_id,item_type,title,item_id\nm1,music,A,x\np1,podcast,B,y\n",
            INTER,
            "items.csv, column 'item_id': the header names this column twice",
        ),
        (
            b"item_id,item_type,title\nm1,music,A\np1,podcast,B\n",
            b"user_id,item_id,weight, weight\nu1,m1,2,3\n",
            "interactions.csv, column 'weight': the header names this column twice",
        ),
    ],
    ids=["item_id", "weight"],
)
def test_a_column_named_twice_is_refused(tmp_path, items, inter, expected):
    assert error_of(write(tmp_path, items=items, inter=inter)) == expected
