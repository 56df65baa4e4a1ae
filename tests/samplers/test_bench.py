"""``bench-sampler`` on a graph directory, with its fan-out, batch size and seed type."""

from __future__ import annotations

import json

import pytest
import torch
from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import load_graph
from audiograph.pipeline.cli import main as cli_main
from audiograph.samplers.bench import run_sampler_bench, seed_batches


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    prepare_synthetic(
        tmp / "d", users=200, items={"music": 80, "podcast": 40, "audiobook": 10}, seed=3
    )
    build_graph(tmp / "d", tmp / "g", GraphConfig(encoder="none"), quiet=True)
    return tmp / "g"


def test_one_hop_takes_every_neighbour_of_the_seeds(graph_dir):
    """A fan-out above every degree samples all in-edges of the seeds: the exact count, the
    same on both samplers, with features or not."""
    res = run_sampler_bench(
        graph=str(graph_dir), fanout=[1000], batch_size=16, seed_type="podcast", batches=2
    )
    assert (res["seed_type"], res["fanout"], res["batch_size"]) == ("podcast", [1000], 16)
    data = load_graph(graph_dir)
    expected = 0
    for batch in seed_batches(data, "podcast", 2, 16):
        for et in data.edge_types:
            if et[2] == "podcast":
                expected += int(torch.isin(data[et].edge_index[1], batch["podcast"]).sum())
    rows = {(r["sampler"], r["seeds"], r["weighted"], r["features"]): r for r in res["rows"]}
    assert rows["audiograph", "podcast", False, False]["edges_per_batch"] == expected / 2
    assert rows["audiograph", "podcast", True, False]["edges_per_batch"] == expected / 2
    assert rows["pyg", "all", False, False]["edges_per_s"] is None  # PyG: one seed type
    peer = rows["pyg", "podcast", False, False]
    if WITH_PYG_LIB or WITH_TORCH_SPARSE:
        assert peer["edges_per_batch"] == expected / 2
        assert res["ratio"] == res["ours_edges_per_s"] / res["pyg_edges_per_s"]
    else:
        assert peer["edges_per_s"] is None and res["ratio"] is None


def test_the_command_line_reaches_the_benchmark_and_errors_are_one_line(graph_dir, capsys):
    args = ["bench-sampler", "--graph", str(graph_dir), "--batches", "1", "--batch-size", "8"]
    with pytest.raises(SystemExit) as done:
        cli_main([*args, "--fanout", "3,2", "--seed-type", "music", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and (res["fanout"], res["batch_size"]) == ([3, 2], 8)
    for bad, words in ((["--seed-type", "jazz"], "not a node type"), (["--load", "-1"], "--load")):
        with pytest.raises(SystemExit) as done:
            cli_main([*args, *bad])
        err = capsys.readouterr().err
        assert done.value.code == 2 and err.count("\n") == 1 and words in err, err
