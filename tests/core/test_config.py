"""The configs' shared checks (``core/config.py``): a non-finite float is refused in every
config, however it is given, at construction."""

from __future__ import annotations

import dataclasses
import math

import pytest

from audiograph.core.errors import ContractError
from audiograph.graphs.config import GraphConfig, SplitConfig
from audiograph.hgnn.config import HGNNConfig
from audiograph.pipeline.options import Settings
from audiograph.semantic_ids.config import FinetuneConfig, GenerativeConfig
from audiograph.twotower.config import LightGCNConfig, TwoTowerConfig

FLOATS = [
    (cls, f.name)
    for cls in (
        HGNNConfig,
        TwoTowerConfig,
        LightGCNConfig,
        SplitConfig,
        GenerativeConfig,
        FinetuneConfig,
    )
    for f in dataclasses.fields(cls)
    if "float" in str(f.type) and "dict" not in str(f.type)
]


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("cls, name", FLOATS, ids=lambda x: getattr(x, "__name__", x))
def test_every_float_setting_refuses_non_finite_values(cls, name, bad):
    with pytest.raises(ContractError, match=f"--{name.replace('_', '-')} must be a finite"):
        cls(**{name: bad})


def test_non_finite_values_in_a_table_are_refused():
    with pytest.raises(ContractError, match="--downsample must be a finite number"):
        SplitConfig(downsample={"audiobook": math.inf})


@pytest.mark.parametrize(
    "cls, section, assignment",
    [
        (HGNNConfig, "hgnn", "lr=inf"),
        (HGNNConfig, "hgnn", "temperature=inf"),
        (HGNNConfig, "hgnn", "balance=inf"),
        (HGNNConfig, "hgnn", "margin=nan"),
        (TwoTowerConfig, "twotower", "lr=inf"),
        (TwoTowerConfig, "twotower", "temperature=inf"),
    ],
)
def test_set_inf_is_refused_at_construction(cls, section, assignment):
    name = assignment.split("=")[0]
    with pytest.raises(ContractError, match=f"^--{name} must be a finite number, got"):
        Settings(cls, section, None, {}, (assignment,)).build()


def test_finite_settings_still_pass():
    assert HGNNConfig(balance=2.5, lr=0.01).balance == 2.5
    assert GraphConfig().device == "cpu"
