"""``audiograph demo``: the main job on the embedded synthetic default.

prepare synthetic → split (temporal hold-out; train = fit + label window) → build-graph
on the fit window → one
multi-link sampled epoch → train-hgnn → export → train-twotower → evaluate (2T-HGNN and
the baselines on the sparse audiobook type) → Semantic IDs of the HGNN embeddings → a small
generative model with one search and one recommendation example, printing a table per step.
"""

from __future__ import annotations

import time
from pathlib import Path

from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.store import graph_info


def run_demo(out: Path, users: int = 3000, seed: int = 0, hgnn_epochs: int = 3) -> dict:
    """Run the chain (see module docstring) into ``out``; returns ``{"graph": graph info,
    "evaluation": the evaluate report}``."""
    from audiograph.graphs.split import split_dataset
    from audiograph.hgnn.export import export_embeddings
    from audiograph.hgnn.train import HGNNConfig, train_hgnn
    from audiograph.twotower.evaluate import evaluate_run, results_table
    from audiograph.twotower.train import TwoTowerConfig, train_twotower

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
    # leak-free: the graph (and so the HGNN) sees only the fit window; the two-tower's
    # positives come from the label window, its inputs from the fit window
    build_graph(out / "split" / "fit", graph_dir, GraphConfig())
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
    cfg = TwoTowerConfig(batch_size=1024, patience=5, seed=seed, val_type="audiobook")
    tt = train_twotower(train_dir, out / "emb", out / "2t-hgnn", cfg, quiet=True)
    print(f"[demo] 2T-HGNN: best validation recall@10 {tt['best_val_recall@10']:.4f} "
          f"(epoch {tt['best_epoch']}) -> {out / '2t-hgnn'}")  # fmt: skip
    report = evaluate_run(out / "2t-hgnn", test_dir, "audiobook")
    print("\n" + results_table(report))
    generative = _generative(out, train_dir, test_dir, seed)
    print(
        f"\n[demo] done in {time.perf_counter() - t0:.1f}s; graph at {graph_dir}, "
        f"two-tower run at {out / '2t-hgnn'} (audiograph recommend {out / '2t-hgnn'} --user U)"
    )
    return {"graph": info, "evaluation": report, "generative": generative}


def _sampler_summary(graph_dir: Path, seed: int) -> None:
    """One multi-link balanced epoch of link batches over the demo graph."""
    from audiograph.graphs.store import load_graph
    from audiograph.samplers import LinkNeighborLoader

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


def _generative(out: Path, train_dir: Path, test_dir: Path, seed: int) -> dict:
    """Semantic IDs of the HGNN export, a small generative model (both tasks), its test
    Recall@10 on a sample and one answer per task, with titles. Returns ``{"sids": the
    SID manifest, "recall": test recall, "search"/"rec": answered item ids, "history":
    the recommended user's history item ids}``."""
    from audiograph.graphs.contract import read_dataset, read_items
    from audiograph.semantic_ids import semantic_ids
    from audiograph.semantic_ids.examples import user_sequences
    from audiograph.semantic_ids.generate import evaluate_generative, load_run, recommend, search
    from audiograph.semantic_ids.generative import GenerativeConfig, train_generative

    m = semantic_ids(out / "emb", out / "sid", levels=2, codebook_size=64, seed=seed)
    st = m["stats"]
    print(f"\n[demo] Semantic IDs: {m['count']:,} items, 2 x 64 codes + disambiguation; "
          f"{st['unique_fraction']:.1%} unique before disambiguation -> {out / 'sid'}")  # fmt: skip
    cfg = GenerativeConfig(d_ff=256, dropout=0.0, history=10, epochs=3, rec_per_epoch=8000,
                           seed=seed)  # fmt: skip
    train_generative(train_dir, out / "sid", out / "generative", cfg, quiet=True)
    r = evaluate_generative(out / "generative", test_dir, ks=(10,), max_inputs=200)
    print("[demo] generative model (T5, SID decoding): test recall@10 "
          + ", ".join(f"{t} {v['recall@10']:.3f}" for t, v in r.items()))  # fmt: skip
    run = load_run(out / "generative")
    titles = dict(read_items(train_dir).select("item_id", "title").iter_rows())
    queries = read_dataset(test_dir).queries
    query = queries["query"][0] if queries is not None and queries.height else "music"
    hist = user_sequences(read_dataset(train_dir).interactions, run.codes["item_id"]).seqs[0]
    answers = {"search": search(run, [query], 5)[0], "rec": recommend(run, [hist], 5)[0]}
    for label, rows in zip((f'search "{query}"', "recommend for the first training user"),
                           answers.values(), strict=True):  # fmt: skip
        print(f"[demo] {label}:")
        for row in run.codes[rows].iter_rows(named=True):
            print(f"    {row['sid']:<12}{row['item_type']:<11}{titles.get(row['item_id'], '')}")
    ids = run.codes["item_id"]
    return {"sids": m, "recall": r, **{k: ids[v].to_list() for k, v in answers.items()},
            "history": ids[hist].to_list()}  # fmt: skip
