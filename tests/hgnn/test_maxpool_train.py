"""Fused max-pool (``hgnn.maxpool.max_pool``): the values and gradients of the unfused
gather + ``scatter_reduce`` / PyG ``aggr="max"``, and the HGNN with the fused layer equals
the one through PyG's ``MessagePassing`` on the same weights and batch."""

from __future__ import annotations

import pytest
import torch

from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import load_graph
from audiograph.hgnn import HeteroSAGE, max_margin_loss
from audiograph.hgnn.maxpool_train import max_pool
from audiograph.hgnn.model import embed_batch
from audiograph.samplers import LinkNeighborLoader


def unfused(table, src, dst, num_dst):
    rows = table.index_select(0, src)
    out = torch.zeros(num_dst, table.shape[1])
    return out.scatter_reduce(0, dst[:, None].expand(-1, table.shape[1]), rows, "amax")


@pytest.mark.parametrize("sorted_dst", [True, False])
def test_values_and_gradients_equal_the_unfused_max(sorted_dst):
    g = torch.Generator().manual_seed(0)
    n_src, n_dst, e, dim = 50, 30, 400, 16
    src = torch.randint(n_src, (e,), generator=g)
    dst = torch.randint(n_dst - 3, (e,), generator=g)  # the last 3 destinations: no edges
    if sorted_dst:
        dst = dst.sort().values
    pre = torch.randn(n_src, dim, generator=g)
    weights = torch.randn(n_dst, dim, generator=g)
    grads = []
    for fn in (max_pool, unfused):
        x = pre.clone().requires_grad_()
        out = fn(torch.relu(x), src, dst, n_dst)
        (out * weights).sum().backward()
        grads.append((out.detach(), x.grad))
    (a, ga), (b, gb) = grads
    assert torch.equal(a, b) and torch.equal(a[-3:], torch.zeros(3, dim))
    # ties only at relu's 0, where neither passes a gradient; the sums' order differs
    assert torch.allclose(ga, gb, atol=1e-6, rtol=0)
    assert (ga != 0).sum() > 0


def test_no_edges_and_the_gradient_goes_to_the_argmax():
    table = torch.tensor([[1.0, 5.0], [3.0, 2.0], [0.5, 0.5]], requires_grad=True)
    src, dst = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 2])
    out = max_pool(table, src, dst, 3)
    assert out.tolist() == [[3.0, 5.0], [0.0, 0.0], [0.5, 0.5]]
    out.backward(torch.tensor([[10.0, 20.0], [7.0, 7.0], [1.0, 2.0]]))
    assert table.grad.tolist() == [[0.0, 20.0], [10.0, 0.0], [1.0, 2.0]]
    empty = max_pool(table, torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), 2)
    assert torch.equal(empty, torch.zeros(2, 2))


def test_fused_hgnn_equals_pyg_message_passing(tmp_path):
    """Same weights, same sampled batch: outputs within 1e-5, every gradient within 1e-5."""
    prepare_synthetic(
        tmp_path / "d", users=300, items={"music": 150, "podcast": 60, "audiobook": 20}, seed=2
    )
    build_graph(tmp_path / "d", tmp_path / "g", GraphConfig(encoder="none"), quiet=True)
    data = load_graph(tmp_path / "g")
    n = {t: data[t].num_nodes for t in data.node_types}
    models = []
    for conv in ("maxpool", "maxpool-pyg"):
        torch.manual_seed(0)
        models.append(HeteroSAGE(data.node_types, data.edge_types, n, 0, 32, 2, conv))
    assert all(torch.equal(p, q) for p, q in zip(*(m.parameters() for m in models), strict=True))
    batch = next(LinkNeighborLoader(data, [10, 5], batch_size=64, num_negatives=3).iter_epoch(0))
    has_text = {t: data[t].has_text for t in data.node_types}
    outs = []
    for model in models:
        z = embed_batch(model, batch, has_text)
        max_margin_loss(z, batch).backward()
        outs.append(z)
    for t in outs[0]:
        assert torch.allclose(outs[0][t], outs[1][t], atol=1e-5, rtol=0), t
    for (name, p), q in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        a, b = (p.grad.to_dense(), q.grad.to_dense()) if p.grad.is_sparse else (p.grad, q.grad)
        assert torch.allclose(a, b, atol=1e-5, rtol=0), name


def test_bench_train_reports_both_sides(tmp_path, monkeypatch):
    """``bench-train`` on a small graph: both sides timed on the same batches at the same
    precision (train-hgnn's auto, resolved), the ratio is audiograph ÷ PyG, and the
    end-to-end PyG row is skipped only without its sampler."""
    import audiograph.hgnn.train
    from audiograph.core.precision import resolve_precision
    from audiograph.hgnn.bench import HAS_PYG_SAMPLER, bench_train
    from audiograph.hgnn.config import HGNNConfig

    prepare_synthetic(
        tmp_path / "d", users=200, items={"music": 80, "podcast": 40, "audiobook": 10}, seed=3
    )
    build_graph(tmp_path / "d", tmp_path / "g", GraphConfig(encoder="none"), quiet=True)
    used = []

    def spy(model, batch, has_text, precision="fp32"):
        used.append((model.convs[0].convs[model.edge_types[0]].fused, precision))
        return embed_batch(model, batch, has_text, precision)

    monkeypatch.setattr(audiograph.hgnn.train, "embed_batch", spy)  # bench steps use its loss
    res = bench_train(load_graph(tmp_path / "g"), HGNNConfig(hidden=16, batch_size=64), 3)
    ours, pyg = res["compute"]["audiograph"], res["compute"]["pyg"]
    assert ours["batches"] == pyg["batches"] == 3 and ours["messages_per_s"] > 0
    assert res["ratio"] == round(ours["edges_per_s"] / pyg["edges_per_s"], 2)
    assert (res["end_to_end"]["pyg"] is None) == (not HAS_PYG_SAMPLER)
    auto = resolve_precision("auto", "cpu")
    assert {(True, auto), (False, auto)} == set(used)  # fused (ours) and PyG's layer


def test_bench_train_seed_type_names_a_link_type(tmp_path):
    from audiograph.hgnn.bench import _link_type

    prepare_synthetic(tmp_path / "d", users=100, items={"music": 30, "podcast": 20}, seed=3)
    build_graph(tmp_path / "d", tmp_path / "g", GraphConfig(encoder="none"), quiet=True)
    data = load_graph(tmp_path / "g")
    assert _link_type(data, "podcast") == ("podcast", "co", "podcast")
    assert _link_type(data, "music__co__podcast") == ("music", "co", "podcast")
    with pytest.raises(
        ContractError, match="podcast__co__music: not a link type.*music__co__music"
    ):
        _link_type(data, "podcast__co__music")  # the graph's canonical direction is music first
    from audiograph.hgnn.bench import bench_train
    from audiograph.hgnn.config import HGNNConfig

    res = bench_train(data, HGNNConfig(hidden=8, batch_size=32), 2, ("music", "co", "podcast"))
    assert res["compute"]["audiograph"]["batches"] == res["compute"]["pyg"]["batches"] == 2


def test_bench_train_load_runs_busy_processes_beside_both_sides(tmp_path, monkeypatch):
    """``bench-train --load N`` runs both sides inside ``busy_processes(N)`` and records N;
    a negative load is refused with the option's name."""
    import contextlib

    import audiograph.hgnn.bench as bench
    import audiograph.samplers.bench as sbench
    from audiograph.hgnn.config import TrainBenchConfig

    prepare_synthetic(tmp_path / "d", users=100, items={"music": 30, "podcast": 20}, seed=3)
    build_graph(tmp_path / "d", tmp_path / "g", GraphConfig(encoder="none"), quiet=True)
    seen = []

    @contextlib.contextmanager
    def spy(n):
        seen.append(("enter", n))
        yield
        seen.append(("exit", n))

    def fake(data, cfg, batches, link_type):
        seen.append(("bench", batches))
        return {"precision": "fp32"}

    monkeypatch.setattr(sbench, "busy_processes", spy)
    monkeypatch.setattr(bench, "bench_train", fake)
    res = bench.run_train_bench(graph=str(tmp_path / "g"), batches=2, load=2)
    assert seen == [("enter", 2), ("bench", 2), ("exit", 2)] and res["load"] == 2
    with pytest.raises(ContractError, match="--load must be >= 0"):
        TrainBenchConfig(load=-1).validate()
