"""Run directories (core/runs.py): a resume validates the checkpoint (its identity, that it
fits the model) before it changes any file; only then is the metrics log trimmed to it."""

from __future__ import annotations

import pytest
import torch

from audiograph.core.errors import ContractError
from audiograph.core.runs import CHECKPOINT, METRICS, restorer, start_run


def make_run(path, epochs: int, checkpointed: int, model: torch.nn.Module, tag: str = ""):
    """A run that logged ``epochs`` epochs but whose checkpoint holds ``checkpointed``
    (a crash after logging, before the checkpoint)."""
    run = start_run(path, "test-run", {"train": {}}, {})
    for e in range(epochs):
        run.log({"epoch": e, "train_loss": 1.0 / (e + 1), "tag": tag})
        if e < checkpointed:
            run.save_checkpoint({"model": model.state_dict(), "epoch": torch.tensor(e + 1)})
    return run


def test_a_checkpoint_of_another_run_is_refused_and_changes_nothing(tmp_path):
    model = torch.nn.Linear(3, 2)
    run = make_run(tmp_path / "a", 3, 3, model, "a")
    other = make_run(tmp_path / "b", 1, 1, model, "b")
    (run.path / CHECKPOINT).write_bytes((other.path / CHECKPOINT).read_bytes())
    before = (run.path / METRICS).read_bytes()
    with pytest.raises(ContractError, match="belongs to another run") as err:
        run.load_checkpoint("cpu", restore=restorer(run.path / CHECKPOINT, model=model))
    assert "\n" not in str(err.value)
    assert (run.path / METRICS).read_bytes() == before  # 3 lines, not cut to 1
    # its own checkpoint (after a crash that logged one epoch more) trims the log
    own = make_run(tmp_path / "c", 3, 2, model, "c")
    assert own.load_checkpoint("cpu", restore=restorer(own.path / CHECKPOINT, model=model))
    assert [r["epoch"] for r in own.metrics()] == [0, 1]


def test_the_log_is_trimmed_only_once_the_checkpoint_fits_the_model(tmp_path):
    run = make_run(tmp_path / "a", 3, 1, torch.nn.Linear(3, 2))
    ckpt = torch.load(run.path / CHECKPOINT, weights_only=True)
    del ckpt["metrics_digest"]  # a checkpoint written before the digest
    torch.save(ckpt, run.path / CHECKPOINT)
    before = (run.path / METRICS).read_bytes()
    wrong = torch.nn.Linear(4, 2)
    with pytest.raises(ContractError, match="weights do not fit this model"):
        run.load_checkpoint("cpu", restore=restorer(run.path / CHECKPOINT, model=wrong))
    assert (run.path / METRICS).read_bytes() == before
    right = torch.nn.Linear(3, 2)
    run.load_checkpoint("cpu", restore=restorer(run.path / CHECKPOINT, model=right))
    assert [r["epoch"] for r in run.metrics()] == [0]


def test_a_missing_checkpoint_after_logged_epochs_is_refused(tmp_path):
    run = make_run(tmp_path / "a", 3, 3, torch.nn.Linear(3, 2))
    (run.path / CHECKPOINT).unlink()
    before = (run.path / METRICS).read_bytes()
    with pytest.raises(ContractError, match="checkpoint.pt is missing but metrics.jsonl"):
        run.load_checkpoint("cpu")
    assert (run.path / METRICS).read_bytes() == before
