"""``audiograph featurize`` on 2 torchrun ranks: the cache gets the vectors a single
process computes (within 1e-6), each text once, and build-graph then encodes nothing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from audiograph.core.text_encoder import TextEncoder, read_cache
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import build_graph
from audiograph.graphs.config import FeaturizeConfig, GraphConfig
from audiograph.graphs.featurize import featurize_catalog


def test_two_ranks_fill_the_cache_like_one_process(tmp_path):
    data = tmp_path / "data"
    prepare_synthetic(data, users=50, items={"music": 60, "podcast": 30, "audiobook": 10})
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "-m",
            "audiograph",
            "featurize",
            str(data),
            "--cache-dir",
            str(tmp_path / "ddp"),
            "--batch-size",
            "16",
            "--distributed",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "encoded on 2 rank(s)" in res.stdout and res.stdout.count("[featurize]") == 1
    one = featurize_catalog(data, quiet=True, cfg=_cfg(tmp_path / "one"))
    assert one["encoded"] == one["texts"] > 0 and one["ranks"] == 1
    enc = TextEncoder()
    a, b = (read_cache(tmp_path / d, enc).sort("text_hash") for d in ("ddp", "one"))
    assert a["text_hash"].to_list() == b["text_hash"].to_list()  # every text, once
    assert len(list((tmp_path / "ddp" / enc.id).glob("*.parquet"))) == 2  # one file per rank
    np.testing.assert_allclose(
        np.stack(a["vector"].to_numpy()), np.stack(b["vector"].to_numpy()), atol=1e-6
    )
    again = featurize_catalog(data, quiet=True, cfg=_cfg(tmp_path / "ddp"))
    assert again["encoded"] == 0 and again["cached"] == one["texts"]
    m = build_graph(data, tmp_path / "g", GraphConfig(cache_dir=str(tmp_path / "ddp")), quiet=True)
    assert m["stats"]["text_cache"]["encoded"] == 0


def _cfg(cache) -> FeaturizeConfig:
    return FeaturizeConfig(cache_dir=str(cache), batch_size=16)
