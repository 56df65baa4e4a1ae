"""``audiograph demo``: the main job on the embedded synthetic default.

prepare synthetic → split (temporal hold-out) → build-graph on the training part → one
multi-link sampled epoch → train-hgnn → export → train-twotower → evaluate (2T-HGNN and
the baselines on the sparse audiobook type), printing a table per step.
"""

from __future__ import annotations

import time
from pathlib import Path

from graphs.adapters.synthetic import prepare_synthetic
from graphs.build import GraphConfig, build_graph
from graphs.store import graph_info


def run_demo(out: Path, users: int = 3000, seed: int = 0, hgnn_epochs: int = 3) -> dict:
    """Run the chain (see module docstring) into ``out``; returns ``{"graph": graph info,
    "evaluation": the evaluate report}``."""
    from graphs.split import split_dataset
    from hgnn.export import export_embeddings
    from hgnn.train import HGNNConfig, train_hgnn
    from twotower.evaluate import evaluate_run, results_table
    from twotower.train import TwoTowerConfig, train_twotower

    t0 = time.perf_counter()
    out = Path(out)
    data_dir, graph_dir = out / "data", out / "graph"
    manifest = prepare_synthetic(data_dir, users=users, seed=seed)
    print(
        f"[demo] synthetic catalog: {manifest['counts']['items']:,} items "
        f"{manifest['items_per_type']}, {manifest['counts']['interactions']:,} interactions "
        f"-> {data_dir}"
    )
    split = split_dataset(data_dir, out / "split", 0.2, seed)
    train_dir, test_dir = out / "split" / "train", out / "split" / "test"
    print(f"[demo] {split['method']} split: {split['train']['interactions']:,} train / "
          f"{split['test']['interactions']:,} test interactions")  # fmt: skip
    build_graph(train_dir, graph_dir, GraphConfig())
    info = graph_info(graph_dir)
    print(f"\n{'node type':<14}{'nodes':>10}{'featureless':>13}")
    for t, n in info["node_types"].items():
        print(f"{t:<14}{n:>10,}{info['featureless'][t]:>13,}")
    print(f"\n{'edge type':<28}{'edges':>10}")
    for k, n in info["edge_types"].items():
        print(f"{k:<28}{n:>10,}")
    _sampler_summary(graph_dir, seed)
    print()
    train_hgnn(graph_dir, out / "hgnn", HGNNConfig(epochs=hgnn_epochs, seed=seed), quiet=True)
    emb = export_embeddings(out / "hgnn", out / "emb", catalog=train_dir)
    print(f"[demo] HGNN: {hgnn_epochs} epochs, {emb['count']:,} item embeddings -> {out / 'emb'}")
    # as in benchmarks/quality.py: trained on every type's positives, evaluated on audiobooks
    cfg = TwoTowerConfig(batch_size=1024, patience=5, seed=seed)
    tt = train_twotower(train_dir, out / "emb", out / "2t-hgnn", cfg, quiet=True)
    print(f"[demo] 2T-HGNN: best validation recall@10 {tt['best_val_recall@10']:.4f} "
          f"(epoch {tt['best_epoch']}) -> {out / '2t-hgnn'}")  # fmt: skip
    report = evaluate_run(out / "2t-hgnn", test_dir, "audiobook")
    print("\n" + results_table(report))
    print(
        f"\n[demo] done in {time.perf_counter() - t0:.1f}s; graph at {graph_dir}, "
        f"two-tower run at {out / '2t-hgnn'} (audiograph recommend {out / '2t-hgnn'} --user U)"
    )
    return {"graph": info, "evaluation": report}


def _sampler_summary(graph_dir: Path, seed: int) -> None:
    """One multi-link balanced epoch of link batches over the demo graph."""
    from graphs.store import load_graph
    from samplers import LinkNeighborLoader

    loader = LinkNeighborLoader(load_graph(graph_dir), [15, 10], batch_size=256, seed=seed)
    t0 = time.perf_counter()
    batches = sampled = 0
    for batch in loader.iter_epoch(0):
        batches += 1
        sampled += sum(int(batch[et].edge_index.shape[1]) for et in batch.edge_types)
    print(f"\n{'link type (multi-link epoch 0)':<32}{'all edges':>10}{'this epoch':>12}")
    for et, e in loader.epoch_edges(0).items():
        print(f"{'__'.join(et):<32}{int(loader.edges[et].shape[1]):>10,}{int(e.shape[1]):>12,}")
    print(
        f"[demo] sampled {batches} link batches ([15, 10] fan-out), {sampled:,} message-passing"
        f" edges in {time.perf_counter() - t0:.1f}s"
    )
