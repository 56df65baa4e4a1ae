"""Scoring of ``benchmarks/generative.py``: every row (generative model or reference) ranks
items for the same sampled test inputs, and is scored per input, so rows can be paired.

* search inputs: distinct test query strings; relevant = the items the query's test rows
  name (on Last.fm, tags first given to the artist in the test part); every row excludes
  the items the query names in training (the generative model as far as its beam allows:
  widened by their number, at most 100).
* rec inputs: test users with training items and new test items; relevant = their test
  items not in training; every row excludes the user's training items.
* named search inputs (Last.fm): tags given in the test part to items that already have
  the tag in their training text (:func:`named_queries`); nothing excluded.

Answers are item ids, so rows over different catalogs (a space skips items without text)
are scored alike. Per-input recall@k feeds the paired bootstrap
(:func:`quality_stats.paired_bootstrap`, keyed by input).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from audiograph.core.embeddings import read_embeddings, read_manifest
from audiograph.core.ranking import top_k
from audiograph.core.text_encoder import TextEncoder, item_texts
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.user_tags import TAGS, has_user_tags
from audiograph.semantic_ids.examples import user_sequences
from audiograph.semantic_ids.generate import load_run, recommend, search
from audiograph.twotower.serve import user_item_vectors

KS = (10, 30)


def eval_inputs(split: Path, max_inputs: int, seed: int) -> dict[str, Any]:
    """The sampled inputs of both tasks: ``{"queries": [...], "q_rel": [set(item_id)],
    "q_seen": [set(item_id) named in training], "users": [...], "history": [[item_id, ...]
    oldest first], "u_rel": [set(item_id)], "named": [...], "n_rel": [set(item_id)]}``
    (``named``: :func:`named_queries`)."""
    train, test = read_dataset(split / "train"), read_dataset(split / "test")
    rng = np.random.default_rng([seed, 11])

    def sample(n: int) -> np.ndarray:
        return np.sort(rng.choice(n, max_inputs, replace=False)) if n > max_inputs else np.arange(n)

    q_rel: dict[str, set[str]] = {}
    if test.queries is not None:
        for q, item in test.queries.select("query", "item_id").iter_rows():
            q_rel.setdefault(q, set()).add(item)
    queries = sorted(q_rel)
    queries = [queries[i] for i in sample(len(queries))]
    q_seen: dict[str, set[str]] = {}
    if train.queries is not None:
        for q, item in train.queries.select("query", "item_id").iter_rows():
            q_seen.setdefault(q, set()).add(item)
    all_items = train.items["item_id"]
    seqs = user_sequences(train.interactions, all_items)
    hist = {u: all_items.gather(s).to_list() for u, s in zip(seqs.users, seqs.seqs, strict=True)}
    u_rel: dict[str, set[str]] = {}
    for u, item in test.interactions.select("user_id", "item_id").unique().iter_rows():
        if u in hist:
            u_rel.setdefault(u, set()).add(item)
    u_rel = {u: r - set(hist[u]) for u, r in u_rel.items()}
    users = sorted(u for u, r in u_rel.items() if r)
    users = [users[i] for i in sample(len(users))]
    named = named_queries(train, test)  # drawn last: the other inputs stay as they were
    named_q = sorted(named)
    named_q = [named_q[i] for i in sample(len(named_q))]
    return {
        "queries": queries,
        "q_rel": [q_rel[q] for q in queries],
        "q_seen": [q_seen.get(q, set()) for q in queries],
        "users": users,
        "history": [hist[u] for u in users],
        "u_rel": [u_rel[u] for u in users],
        "named": named_q,
        "n_rel": [named[q] for q in named_q],
    }


def named_queries(train: Any, test: Any) -> dict[str, set[str]]:
    """The easier search slice where queries are tags users gave (Last.fm): ``{tag:
    items}`` of the test part's tag assignments whose tag the item already has in its
    training text — the query names what the item is, and nothing is excluded. Empty
    where the queries are not user tags (synthetic: there every test query's words are
    already in its items' text, the main slice)."""
    if not has_user_tags(test.interactions) or train.queries is None:
        return {}
    known = train.queries.select("query", "item_id").unique()
    given = (
        test.interactions.select("item_id", pl.col(TAGS).alias("query"))
        .explode("query")
        .drop_nulls("query")
        .unique()
        .join(known, on=["query", "item_id"], how="semi")
    )
    out: dict[str, set[str]] = {}
    for q, item in given.select("query", "item_id").sort("query", "item_id").iter_rows():
        out.setdefault(q, set()).add(item)
    return out


def per_input(ranked: list[list[str]], relevant: list[set[str]], k: int) -> list[float]:
    """Recall@k of each input: ``|top-k ∩ relevant| / |relevant|``."""
    return [len(set(r[:k]) & rel) / len(rel) for r, rel in zip(ranked, relevant, strict=True)]


def score(ranked: list[list[str]], relevant: list[set[str]], keys: list[str]) -> dict[str, Any]:
    """``recall@k`` means and the ``per_input`` recalls (for the bootstrap)."""
    out: dict[str, Any] = {"inputs": len(ranked), "per_input": {"key": keys}}
    for k in KS:
        vals = per_input(ranked, relevant, k)
        out[f"recall@{k}"] = float(np.mean(vals)) if vals else None
        out["per_input"][f"recall@{k}"] = vals
    return out


def _top(scores: np.ndarray, ids: list[str], k: int, exclude: list[set[str]] | None) -> list:
    """Top-``k`` item ids per row of ``scores [B, N]`` (``exclude``: ids never returned),
    by the project's one list rule (:func:`audiograph.core.ranking.top_k`)."""
    s = torch.as_tensor(np.array(scores, dtype=np.float32))
    col = {x: i for i, x in enumerate(ids)}
    for b, skip in enumerate(exclude or []):
        if cols := [col[x] for x in skip if x in col]:
            s[b, cols] = -torch.inf
    values, index = top_k(s, k)
    rows = zip(index.tolist(), values.tolist(), strict=True)
    return [[ids[i] for i, v in zip(r, v_r, strict=True) if v > -np.inf] for r, v_r in rows]


def dense_search(emb_dir: Path, queries: list[str], seen: list[set[str]]) -> list[list[str]]:
    """Cosine retrieval with the space's own encoder: query text vs item vectors (``seen``:
    per query the items excluded)."""
    ids, vecs, _ = read_embeddings(emb_dir)
    enc = read_manifest(emb_dir)["encoder"]
    q = TextEncoder(enc["path"], max_length=int(enc["max_length"])).encode(queries, progress=False)
    return _top(q @ vecs.T, ids["item_id"].to_list(), max(KS), seen)


def bm25_search(split: Path, queries: list[str], seen: list[set[str]]) -> list[list[str]]:
    """BM25 (``bm25s``: Lucene's scoring, English stop words) of the query against each
    training item's text — the text the encoders read (``seen``: per query the items
    excluded). Items with no text, or none of the query's words, are never returned."""
    import bm25s

    items = read_dataset(split / "train").items
    texts = item_texts(items)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    ids = items["item_id"].gather(keep).to_list()
    index = bm25s.BM25()
    corpus = bm25s.tokenize([texts[i] for i in keep], stopwords="en", show_progress=False)
    index.index(corpus, show_progress=False)
    widest = max((len(x) for x in seen), default=0) + max(KS)
    found, scores = index.retrieve(
        bm25s.tokenize(queries, stopwords="en", show_progress=False),
        k=min(widest, len(ids)),
        show_progress=False,
    )
    out = []
    for row, score, skip in zip(found.tolist(), scores.tolist(), seen, strict=True):
        hits = [ids[i] for i, x in zip(row, score, strict=True) if x > 0]  # no shared word: none
        out.append([i for i in hits if i not in skip][: max(KS)])
    return out


def two_tower_rec(run: Path, split: Path, users: list[str], history: list) -> list[list[str]]:
    """Top items of a two-tower run (dot product; the user's training items excluded)."""
    all_users, u, items, v = user_item_vectors(run, split / "train")
    row = {x: i for i, x in enumerate(all_users.to_list())}
    scores = (u[[row[x] for x in users]] @ v.T).numpy()
    return _top(scores, items["item_id"].to_list(), max(KS), [set(h) for h in history])


def popularity_rec(split: Path, users: list[str], history: list) -> list[list[str]]:
    """Most-interacted training items (distinct users), the user's own excluded."""
    inter = read_dataset(split / "train").interactions
    pop = inter.select("user_id", "item_id").unique().group_by("item_id").len()
    pop = pop.sort(["len", "item_id"], descending=[True, False])["item_id"].to_list()
    widest = max((len(h) for h in history), default=0) + max(KS)
    head = pop[:widest]
    return [[i for i in head if i not in set(h)][: max(KS)] for h in history]


def generative_rows(run_dir: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    """The run's search and rec answers (item ids) for ``inputs``, with the p50 latency of
    one query and one user (CPU, batch of one, 20 calls each)."""
    torch.manual_seed(0)
    run = load_run(run_dir)
    item_ids = run.codes["item_id"].to_list()
    to_row = {x: i for i, x in enumerate(item_ids)}
    k = max(KS)
    seen = [{to_row[x] for x in q if x in to_row} for q in inputs["q_seen"]]
    s = search(run, inputs["queries"], k, exclude=seen) if inputs["queries"] else []
    named = search(run, inputs["named"], k) if inputs.get("named") else []
    hists = [np.array([to_row[x] for x in h if x in to_row], np.int64) for h in inputs["history"]]
    r = recommend(run, hists, k)
    lat = {}
    for name, call in (
        ("search", lambda i: search(run, [inputs["queries"][i]], 10, exclude=[seen[i]])),
        ("rec", lambda i: recommend(run, [hists[i]], 10)),
    ):
        times = []
        for i in range(min(20, len(hists), len(inputs["queries"]) or 20)):
            t0 = time.perf_counter()
            call(i)
            times.append(time.perf_counter() - t0)
        lat[name] = round(float(np.median(times)) * 1000, 1) if times else None
    return {
        "search": [[item_ids[i] for i in a] for a in s],
        "named": [[item_ids[i] for i in a] for a in named],
        "rec": [[item_ids[i] for i in a] for a in r],
        "p50_ms": lat,
    }


def training_log(run_dir: Path) -> dict[str, Any]:
    """Epochs run, the best (lowest validation loss) epoch, mean examples/s, and the
    examples/s of every epoch (``per_epoch``: the drift across epochs)."""
    rows = pl.read_ndjson(run_dir / "metrics.jsonl")
    best = int(rows["val_loss"].arg_min()) if "val_loss" in rows.columns else rows.height - 1
    return {
        "epochs": rows.height,
        "best_epoch": best,
        "examples_per_s": round(float(rows["examples_per_s"].mean()), 1),
        "per_epoch": [round(float(x), 1) for x in rows["examples_per_s"]],
        "seconds": round(float(rows["seconds"].sum()), 1),
    }
