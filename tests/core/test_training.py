"""The training skeleton (core/training.TrainingLoop) on a toy trainer: early stopping and
best weights, resume equal to an uninterrupted run, keyword options and their resume rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiograph.core.config import Validated
from audiograph.core.errors import ContractError
from audiograph.core.training import TrainingLoop

SCORES = [0.1, 0.5, 0.4, 0.6, 0.3, 0.2, 0.1]  # validation score of each epoch


@dataclass(frozen=True)
class ToyConfig(Validated):
    epochs: int = 7
    patience: int = 2
    lr: float = 0.1
    device: str = "cpu"

    def validate(self) -> None:
        pass


def toy_train(data: Path, run: Path, cfg=None, *, resume=False, **options) -> TrainingLoop:  # noqa: ANN001
    """A one-weight model stepped once per epoch; its weight after epoch e is e + 1."""
    loop = TrainingLoop("train-toy", "hgnn-run", run, {"data_dir": data}, quiet=True)
    cfg = loop.open(ToyConfig, cfg, resume, options)
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    progress = loop.start({"data_dir": str(data), "train": cfg.__dict__}, model, {"optimizer": opt})
    for epoch in loop.epochs(cfg.epochs, cfg.patience):
        opt.zero_grad()
        (-model.weight.sum() / cfg.lr).backward()  # + 1 per step
        opt.step()
        progress.step += 1
        loop.end_epoch({"epoch": epoch, "score": SCORES[epoch]}, SCORES[epoch], "ok")
    return loop


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.txt").write_text("toy")
    return tmp_path / "data"


def test_patience_stops_and_the_best_epoch_is_kept(data, tmp_path):
    loop = toy_train(data, tmp_path / "run")
    p = loop.progress
    # epochs 0-5 run: best 0.6 at epoch 3, then two epochs without a better score
    assert (p.epoch, p.step, p.best, p.best_epoch, p.bad_epochs) == (6, 6, 0.6, 3, 2)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in logged] == [0, 1, 2, 3, 4, 5]
    assert load_file(tmp_path / "run" / "model.safetensors")["weight"].item() == 4.0


def test_resume_ends_like_an_uninterrupted_run(data, tmp_path):
    toy_train(data, tmp_path / "a")
    toy_train(data, tmp_path / "b", epochs=2)
    loop = toy_train(data, tmp_path / "b", resume=True, epochs=7)
    assert loop.progress.epoch == 6 and loop.progress.best_epoch == 3
    for name in ("model.safetensors", "metrics.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ckpt = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert ckpt["best"].dtype == torch.float64 and ckpt["step"].item() == 6


def test_options_override_the_config_and_resume_changes_only_resumable_ones(data, tmp_path):
    loop = toy_train(data, tmp_path / "run", ToyConfig(patience=9), epochs=3)
    assert loop.progress.epoch == 3 and loop.run.config["train"]["patience"] == 9
    with pytest.raises(ContractError, match="unknown"):
        toy_train(data, tmp_path / "x", nosuch=1)
    with pytest.raises(ContractError, match="'lr' cannot change when resuming"):
        toy_train(data, tmp_path / "run", resume=True, lr=0.5)
    with pytest.raises(ContractError, match="already holds a run"):
        toy_train(data, tmp_path / "run")
