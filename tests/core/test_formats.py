"""The one kind check (core.formats) and the embeddings format's owner (core.embeddings)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from audiograph.core.atomic import atomic_dir
from audiograph.core.embeddings import read_embeddings, write_embeddings
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION, FORMATS, check_kind, peek_kind


def _emb(path, n=5, dim=3):
    ids = pl.DataFrame(
        {"item_id": [f"i{k}" for k in range(n)], "item_type": ["a"] * n, "in_graph": [True] * n}
    )
    vecs = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    with atomic_dir(path, "embeddings") as tmp:
        write_embeddings(tmp, ids, vecs, {"space": "test"}, with_table=True)
    return vecs


def test_embeddings_round_trip_and_manifest(tmp_path):
    vecs = _emb(tmp_path / "e")
    ids, got, man = read_embeddings(tmp_path / "e")
    assert np.array_equal(got, vecs) and ids["item_id"].to_list() == [f"i{k}" for k in range(5)]
    assert ids["row"].to_list() == list(range(5))
    assert man["kind"] == "embeddings" and man["format_version"] == FORMAT_VERSION
    assert man["writer"] == "audiograph" and man["space"] == "test"
    assert man["dim"] == 3 and man["count"] == 5 and man["per_type"] == {"a": 5}
    assert sorted(man["files"]) == ["embeddings.npy", "embeddings.parquet", "ids.parquet"]
    table = pl.read_parquet(tmp_path / "e" / "embeddings.parquet")
    assert table.columns == ["item_id", "item_type", "in_graph", "vector"]
    _, mm, _ = read_embeddings(tmp_path / "e", mmap=True)
    assert isinstance(mm, np.memmap) and np.array_equal(np.asarray(mm), vecs)


def test_check_kind_errors_are_one_line_and_name_the_command(tmp_path):
    def err(path, kind):
        with pytest.raises(ContractError) as e:
            check_kind(path, kind)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "no such directory" in err(tmp_path / "nope", "graph")
    assert "'audiograph build-graph'" in err(tmp_path / "nope", "graph")
    (tmp_path / "empty").mkdir()
    assert "not an HGNN run directory (no config.json)" in err(tmp_path / "empty", "hgnn-run")
    _emb(tmp_path / "e")
    assert "holds a 'embeddings' output" in err(tmp_path / "e", "hgnn-run")
    assert "kind is 'embeddings', expected 'graph'" in err(tmp_path / "e", "graph")
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    (tmp_path / "e" / "manifest.json").write_text(json.dumps({**man, "format_version": 99}))
    assert "format_version 99 is newer" in err(tmp_path / "e", "embeddings")
    (tmp_path / "e" / "manifest.json").write_text("{not json")
    assert "unreadable" in err(tmp_path / "e", "embeddings")


def test_a_directory_from_before_versioning_still_loads(tmp_path):
    vecs = _emb(tmp_path / "e")
    f = tmp_path / "e" / "manifest.json"
    man = json.loads(f.read_text())
    del man["format_version"]
    f.write_text(json.dumps(man))
    assert np.array_equal(read_embeddings(tmp_path / "e")[1], vecs)
    assert peek_kind(tmp_path / "e")["kind"] == "embeddings"
    assert peek_kind(tmp_path) is None


def test_inconsistent_embeddings_are_refused(tmp_path):
    _emb(tmp_path / "e")
    np.save(tmp_path / "e" / "embeddings.npy", np.zeros((4, 3), np.float32))
    with pytest.raises(ContractError, match="one per row of embeddings.npy"):
        read_embeddings(tmp_path / "e")
    (tmp_path / "e" / "ids.parquet").unlink()
    with pytest.raises(ContractError, match="without ids.parquet"):
        read_embeddings(tmp_path / "e")


def test_every_format_names_a_cli_command():
    from audiograph.pipeline.cli import app

    names = set()
    for group in [app, *[g.typer_instance for g in app.registered_groups]]:
        names |= {c.name for c in group.registered_commands}
    names |= {g.name for g in app.registered_groups}
    for fmt in FORMATS.values():
        assert fmt.command in names, fmt


def test_one_parser_for_the_hidden_siblings_of_outputs(tmp_path):
    from audiograph.core.atomic import aside_of, remove_path

    assert aside_of(".emb.tmp-123-ab12", ("tmp", "old")) == "emb"
    assert aside_of(".my.old.data.old-9-ff", ("tmp", "old")) == "my.old.data"
    assert aside_of(".hgnn.stale-77", ("stale",)) == "hgnn"
    assert aside_of(".hgnn.stale-77", ("tmp", "old")) is None
    assert aside_of("emb.tmp-1", ("tmp",)) is None  # not hidden: the user's own
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "d")
    remove_path(tmp_path / "link")  # the link, never what it points to
    assert (tmp_path / "d" / "e").is_dir() and not (tmp_path / "link").exists()
    remove_path(tmp_path / "d")
    remove_path(tmp_path / "f")
    assert list(tmp_path.iterdir()) == []
