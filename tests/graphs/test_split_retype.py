"""``split --retype``: a new item type from the train side's tags only (the Last.fm
``vertical`` without test leakage), the same in every part, before the thinning."""

from __future__ import annotations

import typing

import polars as pl
import pytest

from audiograph.core.config import parse_text
from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.config import SplitConfig
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.split import split_dataset
from audiograph.graphs.user_tags import recount_tags

PARTS = ("fit", "labels", "train", "test")
# (artist, tag) per tag row, in time order: 11 training rows (ts 100..110), then 8 test rows
TRAIN_TAGS = (
    [("a", "rock")] * 3
    + [("a", "electronic")] * 2
    + [("b", "electronic")] * 3
    + [("d", "electronic")] * 2
    + [("d", "jazz")]
)
TEST_TAGS = [("a", "electronic")] * 3 + [("b", "rock")] * 2 + [("d", "jazz")] * 3
RETYPE = {"vertical": ["electronic"]}


def _write(path, tags=TRAIN_TAGS + TEST_TAGS):
    """A Last.fm-like dataset: artists, one tag row per (user, artist) with its user's tag."""
    items = pl.DataFrame(
        {
            "item_id": ["a", "b", "d", "e"],
            "item_type": "artist",
            "title": ["A", "B", "D", "E"],
            "tags": [[], [], [], []],
        },
        schema_overrides={"tags": pl.List(pl.Utf8)},
    )
    rows = pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(len(tags))],
            "item_id": [a for a, _ in tags],
            "signal": "tag",
            "ts": list(range(100, 100 + len(tags))),
            "tags": [[t] for _, t in tags],
        }
    )
    path.mkdir(exist_ok=True)
    write_dataset(path, items, rows)
    return path


def _types(split_dir) -> dict[str, dict[str, str]]:
    return {
        p: dict(read_dataset(split_dir / p).items.select("item_id", "item_type").iter_rows())
        for p in PARTS
    }


def test_the_type_comes_from_the_train_sides_tags_in_every_part(tmp_path):
    data = _write(tmp_path / "d")
    # over all rows the most-used tags are a: electronic (5 vs 3 rock), d: jazz (4 vs 2)
    everything = recount_tags(read_dataset(data).items, read_dataset(data).interactions)
    assert [t[0] for t in everything["tags"].head(3)] == ["electronic", "electronic", "jazz"]
    # test = ts >= 111 (the 0.6 quantile): train rows only say a: rock, b and d: electronic
    m = split_dataset(data, tmp_path / "s", test_fraction=0.4, method="temporal", retype=RETYPE)
    assert m["cut_ts"] == 111 and m["test"]["interactions"] == len(TEST_TAGS)
    expected = {"a": "artist", "b": "vertical", "d": "vertical", "e": "artist"}
    assert _types(tmp_path / "s") == dict.fromkeys(PARTS, expected)
    assert m["retype"] == {
        "vertical": {
            "tags": ["electronic"],
            "items": 2,
            "rule": "most-used tag in the train part's user tags (after the test hold-out)",
        }
    }
    # the part counts use the new types: test has b's 2 rows and d's 3 as vertical
    assert m["test"]["per_type"]["vertical"]["interactions"] == 5
    assert m["train"]["per_type"]["vertical"]["interactions"] == 3 + 3
    # whatever the test rows say, the types stay
    leaked = TRAIN_TAGS + [(a, "electronic") for a, _ in TEST_TAGS]
    split_dataset(
        _write(tmp_path / "d2", leaked),
        tmp_path / "s2",
        test_fraction=0.4,
        method="temporal",
        retype=RETYPE,
    )
    assert _types(tmp_path / "s2") == _types(tmp_path / "s")


def test_retype_comes_before_the_adopters(tmp_path):
    data = _write(tmp_path / "d")
    m = split_dataset(
        data,
        tmp_path / "s",
        test_fraction=0.4,
        method="temporal",
        seed=1,
        retype=RETYPE,
        adopters={"vertical": 0.5},
    )
    # b's 3 and d's 3 training users tagged a vertical: half of them keep it
    assert m["adopters"]["vertical"]["adopters"] == 3
    assert m["adopters"]["vertical"]["rows_dropped"] == 3
    assert m["train"]["per_type"]["vertical"]["interactions"] == 3


def test_without_user_tags_the_catalog_tags_decide(tmp_path):
    tags = [["electronic", "rock"], ["rock", "electronic"], []]
    items = pl.DataFrame(
        {"item_id": ["x", "y", "z"], "item_type": "artist", "title": ["X", "Y", "Z"], "tags": tags}
    )
    rows = pl.DataFrame(
        {
            "user_id": ["u0"] * 3 + ["u1"] * 3,
            "item_id": ["x", "y", "z"] * 2,
            "signal": "stream",
            "ts": [1, 2, 3, 4, 5, 6],
        }
    )
    (tmp_path / "d").mkdir()
    write_dataset(tmp_path / "d", items, rows)
    m = split_dataset(tmp_path / "d", tmp_path / "s", method="random", retype=RETYPE)
    assert m["retype"]["vertical"]["items"] == 1
    assert "the catalog's tags" in m["retype"]["vertical"]["rule"]
    assert _types(tmp_path / "s")["test"] == {"x": "vertical", "y": "artist", "z": "artist"}


@pytest.mark.parametrize(
    ("retype", "match"),
    [
        ({"artist": ["electronic"]}, "already has items of type 'artist'"),
        ({"vertical": ["polka"]}, r"no item's most-used tag .* is one of \['polka'\]"),
    ],
)
def test_a_rule_that_cannot_apply_is_a_one_line_error(tmp_path, retype, match):
    with pytest.raises(ContractError, match=match):
        split_dataset(
            _write(tmp_path / "d"),
            tmp_path / "s",
            test_fraction=0.4,
            method="temporal",
            retype=retype,
        )


def test_the_option_is_checked_and_parsed():
    with pytest.raises(ContractError, match="retype"):
        SplitConfig(retype={"vertical": []})
    assert SplitConfig(retype={" vertical ": [" electronic", ""]}).retype == RETYPE
    hint = typing.get_type_hints(SplitConfig)["retype"]  # as --retype vertical=electronic
    assert parse_text("vertical=electronic", hint) == RETYPE


def test_lastfm_vertical_by_the_split_matches_the_train_parts_tags(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    artists = "".join(f"{i}\tA{i}\thttp://a/{i}\t\n" for i in range(1, 6))
    (src / "artists.dat").write_text("id\tname\turl\tpictureURL\n" + artists)
    (src / "tags.dat").write_bytes(b"tagID\ttagValue\n1\telectronic\n2\trock\n")
    (src / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n"
        + "".join(f"{u}\t{a}\t{10 * u + a}\n" for u in range(1, 7) for a in range(1, 6))
    )
    # artist a: electronic from users 1..a, rock from the others (1: mostly rock, 5: electronic)
    rows = [(u, a, 1 if u <= a else 2) for u in range(1, 7) for a in range(1, 6)]
    (src / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n"
        + "".join(f"{u}\t{a}\t{t}\t1\t{1 + u}\t2008\n" for u, a, t in rows)
    )
    prepare_lastfm(src, tmp_path / "lf")
    split_dataset(tmp_path / "lf", tmp_path / "s", seed=0, retype=RETYPE)
    train = read_dataset(tmp_path / "s" / "train")
    top = recount_tags(train.items, train.interactions)["tags"].list.first()
    kind = ["vertical" if t == "electronic" else "artist" for t in top.to_list()]
    expected = dict(zip(train.items["item_id"], kind, strict=True))
    assert set(kind) == {"vertical", "artist"}
    assert _types(tmp_path / "s") == dict.fromkeys(PARTS, expected)
