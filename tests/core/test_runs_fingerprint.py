"""``--resume`` checks a run's inputs by their content: an edit that keeps every file's size
is refused; a run recorded before content fingerprints still resumes by the sizes-and-
manifest fingerprint it recorded."""

from __future__ import annotations

import json

import pytest

from audiograph.core.errors import ContractError
from audiograph.core.formats import CONFIG
from audiograph.core.runs import resume_run, size_fingerprint, start_run


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "manifest.json").write_text('{"kind": "dataset"}\n')
    (root / "items.csv").write_text("item_id,title\na,one\nb,two\n")
    return root


def _same_size_edit(data):
    before = (data / "items.csv").read_text()
    after = before.replace("one", "eno")
    assert len(after) == len(before) and after != before
    (data / "items.csv").write_text(after)


def test_a_same_size_edit_of_an_input_is_refused(tmp_path, data):
    run = tmp_path / "run"
    start_run(run, "hgnn-run", {"train": {}}, {"data": data})
    assert resume_run(run, "hgnn-run", {"data": data}).path == run  # unchanged: resumes
    before = (run / CONFIG).read_bytes()
    _same_size_edit(data)
    with pytest.raises(ContractError, match="changed since the run started") as err:
        resume_run(run, "hgnn-run", {"data": data})
    assert str(data) in str(err.value) and "\n" not in str(err.value)
    assert (run / CONFIG).read_bytes() == before


def test_a_run_recorded_with_the_old_fingerprint_still_resumes(tmp_path, data):
    run = tmp_path / "run"
    start_run(run, "hgnn-run", {"train": {}}, {"data": data})
    config = json.loads((run / CONFIG).read_text())  # as runs recorded it before
    config["inputs"]["data"] = {"path": str(data), "fingerprint": size_fingerprint(data)}
    (run / CONFIG).write_text(json.dumps(config))
    assert resume_run(run, "hgnn-run", {"data": data}).path == run
    (data / "items.csv").write_text("item_id,title\na,one\n")  # a change it sees
    with pytest.raises(ContractError, match="changed since the run started"):
        resume_run(run, "hgnn-run", {"data": data})
