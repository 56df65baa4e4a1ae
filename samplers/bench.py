"""Neighbour-sampler benchmark: audiograph vs PyG ``NeighborLoader`` on one graph, one run.

Default graph: 3 node types (1,000,000 tracks, 200,000 podcasts, 20,000 audiobooks) and
all 9 ordered type pairs as edge types with ``min(n_src, n_dst) * 25`` uniformly random
edges each (≈ 42.5 M edges), 64-d random features; ``--graph GRAPH_DIR`` takes any graph
directory instead (its own features). Fan-out [15, 10] and 1,024 seeds per batch unless
``--fanout``/``--batch-size`` say otherwise; seeds of one type (``--seed-type``, default
``track`` or the graph's largest type) and, for audiograph only, spread over all types.
The peer runs only when torch-sparse or pyg-lib is installed
(``pip install --no-build-isolation '.[pyg]'``), with the same graph, features and edge
weights.

    audiograph bench-sampler                 # table (python benchmarks/sampler.py: the same)
    audiograph bench-sampler --graph G --fanout 10,5 --batch-size 512 --seed-type music
    audiograph bench-sampler --json          # one JSON object (key "ratio")
    audiograph bench-sampler --device cuda   # ours on GPU (the peer stays on CPU)
    audiograph bench-sampler --load 1        # one busy process beside both samplers

The measuring code lives here so that the CLI never imports the ``benchmarks/`` scripts;
its options are :class:`~audiograph.samplers.config.SamplerBenchConfig`'s.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData

from audiograph.core.config import configure
from audiograph.core.errors import ContractError
from audiograph.samplers.config import SamplerBenchConfig
from audiograph.samplers.neighbor import NeighborSampler

SIZES = {"track": 1_000_000, "podcast": 200_000, "audiobook": 20_000}


def synthetic_graph(scale: float = 1.0, feat_dim: int = 0, seed: int = 0) -> HeteroData:
    """The benchmark graph (``scale`` shrinks every node count)."""
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    sizes = {t: max(1, int(n * scale)) for t, n in SIZES.items()}
    for t, n in sizes.items():
        data[t].num_nodes = n
        if feat_dim:
            data[t].x = torch.randn(n, feat_dim, generator=g)
    for s, ns in sizes.items():
        for d, nd in sizes.items():
            e = min(ns, nd) * 25
            data[s, "co", d].edge_index = torch.stack(
                [torch.randint(ns, (e,), generator=g), torch.randint(nd, (e,), generator=g)]
            )
            data[s, "co", d].edge_weight = torch.rand(e, generator=g) * 9 + 1
    return data


def seed_batches(
    data: HeteroData, mode: str, batches: int, batch_size: int = 1024, seed: int = 1
) -> list[dict[str, torch.Tensor]]:
    """``mode`` a node type: ``batch_size`` seeds of that type; ``"all"``: ``batch_size``
    seeds split evenly over the types."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        if mode != "all":
            out.append({mode: torch.randperm(data[mode].num_nodes, generator=g)[:batch_size]})
        else:
            per = batch_size // len(data.node_types)
            out.append(
                {t: torch.randperm(data[t].num_nodes, generator=g)[:per] for t in data.node_types}
            )
    return out


def run_ours(
    data: HeteroData, seeds: list, weighted: bool, device: str, features: bool, fanout: list[int]
) -> dict:
    sampler = NeighborSampler(data, fanout, weighted=weighted, device=device)
    if not features:
        sampler.x = {}
    g = torch.Generator(device=device).manual_seed(0)
    sampler.sample({t: s.to(device) for t, s in seeds[0].items()}, g)  # warm-up
    _sync(device)
    edges, t0 = 0, time.perf_counter()
    for batch in seeds:
        out = sampler.sample({t: s.to(device) for t, s in batch.items()}, g)
        edges += sum(int(out[et].edge_index.shape[1]) for et in out.edge_types)
    _sync(device)
    return _row(len(seeds), edges, time.perf_counter() - t0)


def peer_graph(data: HeteroData, features: bool) -> HeteroData:
    """What the peer loads: node counts, ``x`` when ``features``, edges and edge weights (a
    real graph's other node attributes would only add copying to PyG's side)."""
    out = HeteroData()
    for t in data.node_types:
        out[t].num_nodes = data[t].num_nodes
        if features and data[t].get("x") is not None and data[t].x.shape[-1] > 0:
            out[t].x = data[t].x
    for et in data.edge_types:
        out[et].edge_index = data[et].edge_index
        if data[et].get("edge_weight") is not None:
            out[et].edge_weight = data[et].edge_weight
    return out


def run_pyg(data: HeteroData, seeds: list, features: bool, fanout: list[int]) -> dict | None:
    from torch_geometric.loader import NeighborLoader
    from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE

    if not (WITH_PYG_LIB or WITH_TORCH_SPARSE):
        return None
    data = peer_graph(data, features)
    if any(len(batch) != 1 for batch in seeds):
        return None  # PyG cannot take seeds of several node types (its issue #4765)
    t = next(iter(seeds[0]))
    ids = torch.cat([seeds[0][t], *[b[t] for b in seeds]])  # first batch = warm-up
    loader = NeighborLoader(
        data,
        num_neighbors=fanout,
        input_nodes=(t, ids),
        batch_size=seeds[0][t].numel(),
        shuffle=False,
    )
    it = iter(loader)
    next(it)  # warm-up (the loader's CSC conversion happened in its constructor)
    edges, t0 = 0, time.perf_counter()
    for out in it:
        edges += sum(int(out[et].edge_index.shape[1]) for et in out.edge_types)
    return _row(len(seeds), edges, time.perf_counter() - t0)


def _row(batches: int, edges: int, seconds: float) -> dict:
    return {
        "batches_per_s": batches / seconds,
        "edges_per_s": edges / seconds,
        "edges_per_batch": edges / batches,
        "seconds": seconds,
    }


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _spin() -> None:  # pragma: no cover (runs in a child process)
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """Run ``n`` busy single-threaded processes (a pure-Python loop each) for the block."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spin, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        time.sleep(0.5 if n else 0)  # let them start spinning
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.join()


def multilink_epoch(graph_dir: str, epochs: int = 1) -> list[dict]:
    """One multi-link balanced epoch vs one unbalanced epoch of link-prediction batches
    (balanced edges -> 256-edge batches -> [15, 10] subgraphs) on a real graph."""
    from audiograph.graphs.store import load_graph
    from audiograph.samplers.link_loader import LinkNeighborLoader

    data = load_graph(graph_dir)
    rows = []
    for target in ("min", None):
        loader = LinkNeighborLoader(data, [15, 10], batch_size=256, balance_target=target)
        t0 = time.perf_counter()
        sup = sampled = 0
        for batch in loader.iter_epoch(0):
            sup += sum(
                int(batch[et].edge_label_index.shape[1])
                for et in batch.edge_types
                if "edge_label_index" in batch[et]
            )
            sampled += sum(int(batch[et].edge_index.shape[1]) for et in batch.edge_types)
        per_type = {"__".join(et): int(e.shape[1]) for et, e in loader.epoch_edges(0).items()}
        rows.append(
            {
                "epoch": "multi-link" if target else "unbalanced",
                "supervision_edges": sup,
                "per_type": per_type,
                "sampled_edges": sampled,
                "seconds": time.perf_counter() - t0,
            }
        )
    return rows


def bench_sampler(
    data: HeteroData,
    seed_type: str,
    fanout: list[int],
    batch_size: int,
    batches: int,
    device: str = "cpu",
) -> dict:
    """Every row of the table on ``data``, and the headline ``ratio`` (uniform, ``seed_type``
    seeds, no features: audiograph ÷ PyG)."""
    rows = []
    for mode in (seed_type, "all"):
        seeds = seed_batches(data, mode, batches, batch_size)
        for weighted in (False, True):
            for features in (False, True) if mode != "all" and not weighted else (False,):
                row = run_ours(data, seeds, weighted, device, features, fanout)
                rows.append(
                    {
                        "sampler": "audiograph",
                        "seeds": mode,
                        "weighted": weighted,
                        "features": features,
                        "device": device,
                        **row,
                    }
                )
        for features in (False, True) if mode != "all" else (False,):
            peer = run_pyg(data, seeds, features, fanout)
            rows.append(
                {
                    "sampler": "pyg",
                    "seeds": mode,
                    "weighted": False,
                    "features": features,
                    "device": "cpu",
                    **(peer or dict.fromkeys(_row(1, 0, 1), None)),
                }
            )

    def pick(sampler: str) -> dict:
        return next(
            r
            for r in rows
            if r["sampler"] == sampler
            and r["seeds"] == seed_type
            and not r["weighted"]
            and not r["features"]
        )

    head, peer = pick("audiograph"), pick("pyg")
    return {
        "seed_type": seed_type,
        "fanout": fanout,
        "batch_size": batch_size,
        "batches": batches,
        "ours_edges_per_s": head["edges_per_s"],
        "pyg_edges_per_s": peer["edges_per_s"],
        "ratio": head["edges_per_s"] / peer["edges_per_s"] if peer["edges_per_s"] else None,
        "rows": rows,
        "pyg_skipped": peer["edges_per_s"] is None,
    }


def print_table(result: dict) -> None:
    g = result["graph"]
    print(
        f"graph {g['name']}: {g['nodes']}, {g['edges']:,} edges; fan-out "
        f"{result['fanout']}, {result['batch_size']:,} seeds per batch, "
        f"{result['batches']} batches; {result.get('load', 0)} busy process(es) "
        "beside"
    )
    print(
        f"{'sampler':<11}{'seeds':<12}{'weighted':<10}{'features':<10}{'device':<8}"
        f"{'batches/s':>10}{'edges/batch':>13}{'M edges/s':>11}"
    )
    for r in result["rows"]:
        if r["edges_per_s"] is None:
            print(
                f"{r['sampler']:<11}{r['seeds']:<12}{'-':<10}{str(r['features']):<10}"
                f"{r['device']:<8}  skipped (no torch-sparse/pyg-lib, or mixed seed types)"
            )
            continue
        print(
            f"{r['sampler']:<11}{r['seeds']:<12}{str(r['weighted']):<10}"
            f"{str(r['features']):<10}{r['device']:<8}{r['batches_per_s']:>10.2f}"
            f"{r['edges_per_batch']:>13,.0f}{r['edges_per_s'] / 1e6:>11.2f}"
        )
    ratio = result["ratio"]
    print(
        f"ratio (uniform, {result['seed_type']} seeds, no features): "
        f"{'n/a (peer skipped)' if ratio is None else f'{ratio:.1f}x'}"
    )
    for r in result.get("multilink", []):
        print(
            f"{r['epoch']:<11} epoch: {r['supervision_edges']:>9,} supervision edges, "
            f"{r['sampled_edges']:>12,} sampled edges, {r['seconds']:7.1f}s  {r['per_type']}"
        )


def run_sampler_bench(cfg: SamplerBenchConfig | None = None, **options: Any) -> dict[str, Any]:
    """Run the benchmark of the module docstring (``cfg``, or its fields as ``options``);
    returns the result (what ``--json`` prints; :func:`print_table` shows it)."""
    cfg = configure(SamplerBenchConfig, cfg, options, "run_sampler_bench")
    t0 = time.perf_counter()
    if cfg.graph is None:
        data, name = synthetic_graph(cfg.scale, feat_dim=64), f"synthetic (scale {cfg.scale})"
    else:
        from audiograph.graphs.store import load_graph

        data, name = load_graph(cfg.graph), Path(cfg.graph).name
    build_s = time.perf_counter() - t0
    largest = max(data.node_types, key=lambda t: data[t].num_nodes)
    seed_type = cfg.seed_type or ("track" if "track" in data.node_types else largest)
    if seed_type not in data.node_types:
        raise ContractError(
            f"--seed-type {seed_type}: not a node type of the graph ({', '.join(data.node_types)})"
        )
    result = {
        "graph": {
            "name": name,
            "nodes": {t: int(data[t].num_nodes) for t in data.node_types},
            "edges": sum(int(data[et].edge_index.shape[1]) for et in data.edge_types),
            "build_seconds": build_s,
        },
    }
    fanout = list(cfg.fanout)
    with busy_processes(cfg.load):
        result.update(
            bench_sampler(data, seed_type, fanout, cfg.batch_size, cfg.batches, cfg.device)
        )
    result["load"] = cfg.load
    result["threads"] = torch.get_num_threads()
    if cfg.multilink_graph:
        result["multilink"] = multilink_epoch(cfg.multilink_graph)
    return result
