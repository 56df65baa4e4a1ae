"""``audiograph demo``: the main job on the embedded synthetic default.

The experiment is ``demo.toml`` (next to this file), run by the pipeline runner:
prepare synthetic → split (temporal hold-out; train = fit + label window) → build-graph
on the fit window → train-hgnn → export → train-twotower → evaluate (2T-HGNN and the
baselines on the sparse audiobook type) → Semantic IDs of the HGNN embeddings → a small
generative model. Around it the demo prints the graph, one multi-link sampled epoch, the
evaluation table and one search and one recommendation answer. ``audiograph run`` on
``demo.toml`` writes the same outputs (a rerun reuses them).
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

from audiograph.graphs.store import graph_info
from audiograph.pipeline.config import read_toml


def demo_experiment(out: Path, users: int = 3000, seed: int = 0, hgnn_epochs: int = 3) -> dict:
    """The parsed ``demo.toml`` with ``out``, ``users``, ``seed`` and HGNN epochs set."""
    doc: dict[str, Any] = read_toml(Path(str(resources.files("audiograph.pipeline"))) / "demo.toml")
    doc["experiment"].update(out=str(out), seed=seed)
    doc["prepare"]["users"] = users
    doc["hgnn"]["epochs"] = hgnn_epochs
    return doc


def run_demo(out: Path, users: int = 3000, seed: int = 0, hgnn_epochs: int = 3) -> dict:
    """Run the demo experiment into ``out``; returns ``{"graph": graph info,
    "evaluation": the evaluate report, "generative": see :func:`_generative`}``."""
    from audiograph.pipeline.runner import read_experiment, run_experiment
    from audiograph.twotower.evaluate import results_table

    t0 = time.perf_counter()
    out = Path(out)
    exp = read_experiment(demo_experiment(out, users, seed, hgnn_epochs))
    done = {k: Path(v["path"]) for k, v in run_experiment(exp, quiet=True).items()}
    manifest = json.loads((done["prepare"] / "manifest.json").read_text())
    split = json.loads((done["split"] / "manifest.json").read_text())
    print(
        f"[demo] synthetic catalog: {manifest['counts']['items']:,} items "
        f"{manifest['items_per_type']}, {manifest['counts']['interactions']:,} interactions "
        f"-> {done['prepare']}"
    )
    print(
        f"[demo] {split['method']} split: {split['train']['interactions']:,} train / "
        f"{split['test']['interactions']:,} test interactions"
    )
    info = graph_info(done["graph"])
    print(f"\n{'node type':<14}{'nodes':>10}{'featureless':>13}")
    for t, n in info["node_types"].items():
        print(f"{t:<14}{n:>10,}{info['featureless'][t]:>13,}")
    print(f"\n{'edge type':<28}{'edges':>10}")
    for k, n in info["edge_types"].items():
        print(f"{k:<28}{n:>10,}")
    _sampler_summary(done["graph"], seed)
    emb = json.loads((done["export"] / "manifest.json").read_text())
    print(
        f"\n[demo] HGNN: {hgnn_epochs} epochs, {emb['count']:,} item embeddings -> {done['export']}"
    )
    tt = [json.loads(line) for line in (done["twotower"] / "metrics.jsonl").open()]
    best = max(tt, key=lambda r: r["val_recall@10"]) if tt else {}
    print(
        f"[demo] 2T-HGNN: best validation recall@10 {best.get('val_recall@10', 0):.4f} "
        f"(epoch {best.get('epoch')}) -> {done['twotower']}"
    )
    report = json.loads((done["evaluate"] / "report.json").read_text())
    print("\n" + results_table(report))
    generative = _generative(done, seed)
    print(
        f"\n[demo] done in {time.perf_counter() - t0:.1f}s; graph at {done['graph']}, "
        f"two-tower run at {done['twotower']} (audiograph recommend {done['twotower']} --user U)"
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


def _generative(done: dict[str, Path], seed: int) -> dict:
    """The Semantic IDs and the generative model of the run: test Recall@10 on a sample
    and one answer per task, with titles. Returns ``{"sids": the SID manifest, "recall":
    test recall, "search"/"rec": answered item ids, "history": the recommended user's
    history item ids, "query"/"user": the examples' inputs, "relevant": per task the
    relevant item ids (the query's items; the user's test items), "topic"/"on_topic": the
    query's topic and its items (synthetic catalog)}``."""
    from audiograph.graphs.contract import read_dataset, read_items
    from audiograph.semantic_ids.evaluate import evaluate_generative
    from audiograph.semantic_ids.examples import user_sequences
    from audiograph.semantic_ids.generate import load_run, recommend, search

    train_dir, test_dir = done["split"] / "train", done["split"] / "test"
    m = json.loads((done["semantic_ids"] / "manifest.json").read_text())
    st = m["stats"]
    print(
        f"\n[demo] Semantic IDs: {m['count']:,} items, {m['levels']} x {m['codebook_size']} "
        "codes + disambiguation; "
        f"{st['unique_fraction']:.1%} unique before disambiguation "
        f"-> {done['semantic_ids']}"
    )
    r = evaluate_generative(done["generative"], test_dir, ks=(10,), max_inputs=200)
    print(
        "[demo] generative model (T5, SID decoding): test recall@10 "
        + ", ".join(f"{t} {v['recall@10']:.3f}" for t, v in r.items())
    )
    run = load_run(done["generative"])
    titles = dict(read_items(train_dir).select("item_id", "title").iter_rows())
    train, test = read_dataset(train_dir), read_dataset(test_dir)
    query, of_query = _busiest_query(train.queries, test.queries)
    topic, on_topic = _topic_of(train.items, of_query)
    seqs = user_sequences(train.interactions, run.codes["item_id"])
    user, hist, later = _user_with_test_items(seqs, test.interactions, run.codes["item_id"])
    answers = {"search": search(run, [query], 5)[0], "rec": recommend(run, [hist], 5)[0]}
    ids = run.codes["item_id"]
    for label, rows, good in (
        (
            f'search "{query}" (a test query; * = an item of this query)',
            answers["search"],
            of_query,
        ),
        (
            f"recommend for user {user} (* = an item the user took in the test part)",
            answers["rec"],
            later,
        ),
    ):
        print(f"[demo] {label}:")
        for row in run.codes[rows].iter_rows(named=True):
            mark = "*" if row["item_id"] in good else " "
            print(
                f"  {mark} {row['sid']:<12}{row['item_type']:<11}{titles.get(row['item_id'], '')}"
            )
        found = sum(ids[r] in good for r in rows)
        line = f"    {found} of the top {len(rows)} are relevant"
        if good is of_query and topic is not None:
            line += f"; {sum(ids[r] in on_topic for r in rows)} are of its topic ({topic})"
        print(line)
    ids = run.codes["item_id"]
    return {
        "sids": m,
        "recall": r,
        **{k: ids[v].to_list() for k, v in answers.items()},
        "history": ids[hist].to_list(),
        "query": query,
        "user": user,
        "relevant": {"search": sorted(of_query), "rec": sorted(later)},
        "topic": topic,
        "on_topic": sorted(on_topic),
        "personalised": _personalised(done, titles) if "prefix" in done else None,
    }


def _personalised(done: dict[str, Path], titles: dict[str, str]) -> dict:
    """One personalised search answer (E2P: the user's vector as one soft token) next to the
    same frozen model's answer without it, for the test (user, query) with the most new
    items. Returns ``{"user", "query", "with_user", "without_user", "relevant"}`` (ids)."""
    from audiograph.graphs.contract import read_dataset
    from audiograph.semantic_ids.examples import split_personal_targets
    from audiograph.semantic_ids.prefix import load_prefix, personal_search

    run = load_prefix(done["prefix"])
    train, test = read_dataset(done["split"] / "train"), read_dataset(done["split"] / "test")
    ids = run.gen.codes["item_id"]
    users, qs, rel, excl = split_personal_targets(train, test, ids)
    i = max((j for j, u in enumerate(users) if u in run.users), key=lambda j: len(rel[j]))
    both = {
        flag: personal_search(run, [users[i]], [qs[i]], 5, [excl[i]], with_user=flag)[0]
        for flag in (True, False)
    }
    print(
        f'[demo] personalised search "{qs[i]}" for user {users[i]} (the user\'s two-tower '
        "vector as one soft token before the frozen model; * = an item of this query the "
        "user took in the test part):"
    )
    print(f"    {'with the user token':<40}{'query only (same model)'}")
    for a, b in zip(both[True], both[False], strict=False):
        cell = [f"{'*' if r in rel[i] else ' '} {titles.get(ids[r], '')[:36]}" for r in (a, b)]
        print(f"  {cell[0]:<40}{cell[1]}")
    print(
        f"    {sum(r in rel[i] for r in both[True])} vs "
        f"{sum(r in rel[i] for r in both[False])} of the top 5 are relevant"
    )
    return {
        "user": users[i],
        "query": qs[i],
        "with_user": ids[both[True]].to_list(),
        "without_user": ids[both[False]].to_list(),
        "relevant": sorted(ids[sorted(rel[i])].to_list()),
    }


def _busiest_query(train_q, test_q) -> tuple[str, set[str]]:  # noqa: ANN001
    """The test query with the most test items (ties: alphabetical) and the items of that
    query on either side (what is on topic)."""
    counts = test_q.group_by("query").len().sort(["len", "query"], descending=[True, False])
    query = counts["query"][0]
    both = [q for q in (train_q, test_q) if q is not None]
    return query, {i for q in both for i in q.filter(q["query"] == query)["item_id"].to_list()}


def _topic_of(items, item_ids: set[str]) -> tuple[str | None, set[str]]:  # noqa: ANN001
    """The most common ``topic`` of ``item_ids`` and every item of that topic, where the
    catalog has a ``topic`` column (the synthetic one); else ``(None, set())``."""
    if "topic" not in items.columns:
        return None, set()
    mine = items.filter(items["item_id"].is_in(list(item_ids)))["topic"].drop_nulls()
    if mine.len() == 0:
        return None, set()
    topic = mine.value_counts(sort=True)[0, 0]
    return str(topic), set(items.filter(items["topic"] == topic)["item_id"].to_list())


def _user_with_test_items(seqs, test_inter, sid_items) -> tuple[str, object, set[str]]:  # noqa: ANN001
    """The first training user (by id) with new items in the test part: ``(user, history
    rows, those test item ids)``."""
    later = test_inter.group_by("user_id").agg("item_id")
    later = dict(zip(later["user_id"].to_list(), later["item_id"].to_list(), strict=True))
    for user, hist in zip(seqs.users, seqs.seqs, strict=True):
        seen = set(sid_items.gather(hist).to_list())
        new = set(later.get(user, [])) - seen
        if new:
            return user, hist, new
    return seqs.users[0], seqs.seqs[0], set()
