"""Adapters on the real data sets (skipped when ``../shared/data`` is absent)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.douban import prepare_douban
from audiograph.graphs.adapters.lastfm import prepare_lastfm
from audiograph.graphs.adapters.podcasts import prepare_podcasts
from audiograph.graphs.contract import read_dataset

LASTFM = "lastfm-hetrec-2k"
LASTFM_FILES = ("artists.dat", "user_artists.dat", "tags.dat", "user_taggedartists.dat")
DOUBAN = "douban-music-book"
PODCASTS = "podcast-catalog"


def _source(data_root: Path, name: str) -> Path:
    src = data_root / name
    if not src.is_dir():
        pytest.skip(f"real data not found at {src}")
    return src


def _prepared(tmp_path_factory, data_root: Path, name: str, prepare) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp(name) / "ds"
    return prepare(_source(data_root, name), out), out


@pytest.fixture(scope="module")
def lastfm(tmp_path_factory, data_root):
    return _prepared(tmp_path_factory, data_root, LASTFM, prepare_lastfm)


@pytest.fixture(scope="module")
def douban(tmp_path_factory, data_root):
    return _prepared(tmp_path_factory, data_root, DOUBAN, prepare_douban)


@pytest.fixture(scope="module")
def podcasts(tmp_path_factory, data_root):
    return _prepared(tmp_path_factory, data_root, PODCASTS, prepare_podcasts)


def _signal_counts(ds) -> dict[str, int]:
    return dict(ds.interactions.group_by("signal").len().iter_rows())


def _assert_deterministic(prepare, src: Path, first: Path, tmp_path: Path) -> None:
    second = tmp_path / "again"
    prepare(src, second)
    names = sorted(p.name for p in first.glob("*.parquet"))
    assert names == sorted(p.name for p in second.glob("*.parquet"))
    for name in names:
        assert pl.read_parquet(first / name).equals(pl.read_parquet(second / name)), name
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# ----------------------------------------------------------------------------- Last.fm


def test_lastfm_counts(lastfm):
    manifest, out = lastfm
    ds = read_dataset(out)
    assert ds.items.height == 17_632
    assert manifest["items_per_type"] == {"artist": 17_632}
    assert _signal_counts(ds) == {"stream": 92_834, "tag": 70_297}
    summary = manifest["summary"]
    assert summary["dropped"] == {
        "plays_unknown_artist": 0,
        "tag_assignments_unknown_artist": 1_538,
        "tag_assignments_unknown_tag": 0,
    }
    assert summary["tag_assignments"] == 186_479
    assert summary["tag_assignments_used"] == 186_479 - 1_538
    assert summary["tag_dates_invalid"] == 0
    assert summary["tag_dates_implausible_ignored"] == 5
    assert ds.queries.height == summary["queries"] == 97_678
    assert ds.queries["query"].n_unique() == summary["query_strings"] == 2_210
    tags = ds.interactions.filter(pl.col("signal") == "tag")
    assert tags["weight"].sum() == 186_479 - 1_538
    assert tags["ts"].null_count() == 2  # only implausible (1956) dates for these pairs
    assert ds.interactions.filter(pl.col("signal") == "stream")["ts"].null_count() == 92_834


def test_lastfm_items_and_queries(lastfm, data_root):
    _, out = lastfm
    ds = read_dataset(out)
    src = _source(data_root, LASTFM)
    gaga = ds.items.filter(pl.col("item_id") == "89").row(0, named=True)
    assert gaga["title"] == "Lady Gaga" and gaga["url"] == "http://www.last.fm/music/Lady+Gaga"
    # Expected tag order, computed from the raw files without polars.
    tag_text = (src / "tags.dat").read_bytes().decode("latin-1")
    names = dict(list(csv.reader(io.StringIO(tag_text), delimiter="\t"))[1:])
    with open(src / "user_taggedartists.dat", encoding="latin-1") as f:
        uses = Counter(
            names[r["tagID"]] for r in csv.DictReader(f, delimiter="\t") if r["artistID"] == "89"
        )
    assert gaga["tags"] == sorted(uses, key=lambda t: (-uses[t], t))
    assert gaga["tags"][:2] == ["pop", "dance"]
    # latin-1 tag values decode to real characters.
    all_tags = set(ds.items["tags"].explode().drop_nulls())
    assert {"tropicália", "rock français", "die Ärzte"} <= all_tags
    # Queries: tags used on >= 5 artists, one row per artist.
    per_query = ds.queries.group_by("query").len()
    assert per_query["len"].min() == 5
    assert ds.queries.filter(pl.col("query") == "pop").height == len(
        [t for t in ds.items["tags"] if "pop" in t]
    )
    assert not ds.queries.is_duplicated().any()


def test_lastfm_deterministic(lastfm, data_root, tmp_path):
    _assert_deterministic(prepare_lastfm, _source(data_root, LASTFM), lastfm[1], tmp_path)


@pytest.mark.parametrize("missing", LASTFM_FILES)
def test_lastfm_missing_file(data_root, tmp_path, missing):
    src = _source(data_root, LASTFM)
    partial = tmp_path / "src"
    partial.mkdir()
    for name in LASTFM_FILES:
        if name != missing:
            (partial / name).symlink_to(src / name)
    with pytest.raises(ContractError, match=missing) as err:
        prepare_lastfm(partial, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- Douban


def test_douban_counts(douban):
    manifest, out = douban
    ds = read_dataset(out)
    assert manifest["items_per_type"] == {"music": 5_567, "book": 6_777}
    assert ds.item_types == ["music", "book"]
    assert ds.items["item_id"].head(1).to_list() == ["music:1"]
    assert ds.items["title"].eq("").all()
    assert _signal_counts(ds) == {"rating": 69_709 + 96_041}
    summary = manifest["summary"]
    assert summary["ratings"] == {"music": 69_709, "book": 96_041}
    assert summary["duplicates_merged"] == {"music": 0, "book": 0}
    assert summary["users"] == {"music": 1_672, "book": 2_110, "all": 2_216, "shared": 1_566}
    assert ds.interactions["weight"].is_between(1, 5).all()
    # Same raw id in both domains: two different items.
    assert {"music:3601", "book:3601"} <= set(ds.items["item_id"])


def test_douban_deterministic(douban, data_root, tmp_path):
    _assert_deterministic(prepare_douban, _source(data_root, DOUBAN), douban[1], tmp_path)


def test_douban_missing_file(tmp_path):
    (src := tmp_path / "src").mkdir()
    (src / "music_ratings.tsv").write_text("1\t2\t3\n")
    with pytest.raises(ContractError, match="book_ratings.tsv"):
        prepare_douban(src, tmp_path / "out")


def test_douban_duplicates_and_bad_rating(tmp_path):
    (src := tmp_path / "src").mkdir()
    (src / "music_ratings.tsv").write_text("1\t2\t3\n1\t2\t5\n2\t2\t4\n")
    (src / "book_ratings.tsv").write_text("1\t7\t1\n")
    manifest = prepare_douban(src, tmp_path / "out")
    assert manifest["summary"]["duplicates_merged"] == {"music": 1, "book": 0}
    inter = read_dataset(tmp_path / "out").interactions
    assert inter.filter(pl.col("user_id") == "1")["weight"].to_list() == [4.0, 1.0]
    (src / "book_ratings.tsv").write_text("1\t7\t6\n")
    with pytest.raises(ContractError, match="book_ratings.tsv, column 'rating'"):
        prepare_douban(src, tmp_path / "out2")


# ----------------------------------------------------------------------------- podcasts


def test_podcasts_catalog(podcasts):
    manifest, out = podcasts
    ds = read_dataset(out)
    assert ds.interactions is None and not (out / "interactions.parquet").exists()
    assert manifest["items_per_type"] == {"podcast": 4_112}
    assert ds.items["item_id"].str.starts_with("podcast:").all()
    assert ds.items["item_id"].n_unique() == 4_112
    # genre is an evaluation label: a feature column only, never tags or text.
    assert ds.items["tags"].list.len().eq(0).all()
    assert ds.items["genre"].n_unique() == 19
    for col in ("genre", "producer", "num_episodes", "rating", "num_reviews", "link"):
        assert col in ds.items.columns
    summary = manifest["summary"]
    assert summary["dropped"] == {"duplicate_itunes_id": 0}
    assert summary["titles_cleaned"] == 136
    assert summary["missing_rating"] == summary["missing_num_reviews"] == 21
    assert not ds.items["title"].str.contains("[\u202a-\u202e]").any()
    assert (
        ds.items.filter(pl.col("item_id") == "podcast:1479346591").row(0, named=True)["title"]
        == "Kosmographia"
    )


def test_podcasts_deterministic(podcasts, data_root, tmp_path):
    _assert_deterministic(prepare_podcasts, _source(data_root, PODCASTS), podcasts[1], tmp_path)


def test_podcasts_missing_file(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(ContractError, match="podcasts.csv"):
        prepare_podcasts(tmp_path / "src", tmp_path / "out")
