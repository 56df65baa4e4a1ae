"""Building the HGNN (or LightGCN) leaves nothing in the temp folder: PyG's generated ``propagate``
modules (one file per ``MessagePassing`` class and process) are not left behind. Only
torch's per-user compile cache folder (``torchinductor_<user>``, made empty when PyG is
imported, and reused by every process) may be there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch_geometric.data import HeteroData

    from audiograph.hgnn.model import ModelSpec

    data = HeteroData()
    data["a"].num_nodes, data["b"].num_nodes = 4, 3
    edges = {
        ("a", "co", "b"): torch.tensor([[0, 1, 3], [0, 2, 2]]),
        ("b", "co", "a"): torch.tensor([[0, 2, 2], [0, 1, 3]]),
    }
    for et, e in edges.items():
        data[et].edge_index = e
    for conv in ("maxpool", "maxpool-pyg", "sage-mean", "gatv2"):
        model = ModelSpec.of_graph(data, 5, 8, 2, conv).build()
        h0 = {t: model.encode_input(t, torch.arange(n), torch.randn(n, 5),
                                    torch.ones(n, dtype=torch.bool))
              for t, n in (("a", 4), ("b", 3))}
        out = model(h0, edges)
        assert out["a"].shape == (4, 8) and out["b"].shape == (3, 8)

    import polars as pl
    from audiograph.twotower.baselines import fit_lightgcn
    from audiograph.twotower.config import LightGCNConfig

    train = pl.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["i", "j", "i"]})
    items = pl.DataFrame({"item_id": ["i", "j"], "item_type": ["music", "music"]})
    fit = fit_lightgcn(train, pl.Series(["u", "v"]), items, LightGCNConfig(dim=4, epochs=1))
    """
)


def test_building_and_running_the_hgnn_and_lightgcn_leaves_the_temp_folder_empty(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert [p for p in left if not p.startswith("torchinductor_")] == [], left
