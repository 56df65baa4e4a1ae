"""Training and evaluation examples of the generative model's two tasks.

* search: ``(query text, item)`` rows of ``queries.parquet``. Evaluation groups the test
  rows by query string: the relevant set of a query is its test items.
* rec: each user's distinct items as a sequence, ordered by first ``ts`` when every
  interaction has one (chronological), else by total weight ascending (so the "last N"
  are the user's most consumed items). A training example is (the ``history`` items
  before the target → target); without timestamps, "before" means every other item
  (leave one out). Evaluation: the last ``history`` training items → the user's test
  items, with all of the user's training items excluded from the answers.

* personal search: ``(user, query, item)`` triples (:func:`personal_queries`): the tags a
  user gave items when interactions carry them (Last.fm), else the user's items that answer
  a query. Evaluation groups the test triples by ``(user, query)``: the relevant set is the
  items first given (consumed) in the test part; the user's training items of that query
  are excluded from the answers.

Items are rows of the Semantic ID table (``codes.parquet``); rows whose item has no SID
are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from audiograph.core.metrics import hit_metrics, hits_of_lists
from audiograph.graphs.user_tags import TAGS, has_user_tags

if TYPE_CHECKING:
    from audiograph.graphs.contract import Dataset


@dataclass
class RecData:
    """Per user: ``users`` ids and ``seqs`` (item rows, in sequence order);
    ``chronological`` tells how the order was made; ``dropped`` rows had no SID."""

    users: list[str]
    seqs: list[np.ndarray]
    chronological: bool
    dropped: int


def item_rows(sid_items: pl.Series, item_ids: pl.Series) -> np.ndarray:
    """Row in ``sid_items`` of each of ``item_ids`` (``-1`` when absent)."""
    lut = pl.DataFrame({"item_id": sid_items, "_r": np.arange(len(sid_items), dtype=np.int64)})
    out = pl.DataFrame({"item_id": item_ids}).join(
        lut, on="item_id", how="left", maintain_order="left"
    )
    return out["_r"].fill_null(-1).to_numpy()


def user_sequences(inter: pl.DataFrame, sid_items: pl.Series) -> RecData:
    """Sequences of item rows per user (see module docstring for the order)."""
    chrono = inter.height > 0 and inter["ts"].null_count() == 0
    key = pl.col("ts").min() if chrono else pl.col("weight").sum()
    per = inter.group_by("user_id", "item_id").agg(key.alias("_k"))
    per = per.with_columns(_r=pl.Series(item_rows(sid_items, per["item_id"])))
    dropped = int((per["_r"] < 0).sum())
    per = per.filter(pl.col("_r") >= 0).sort("user_id", "_k", "item_id")
    grouped = per.group_by("user_id", maintain_order=True).agg(pl.col("_r"))
    seqs = [np.asarray(s, np.int64) for s in grouped["_r"].to_list()]
    return RecData(grouped["user_id"].to_list(), seqs, chrono, dropped)


def rec_examples(
    data: RecData, history: int, rng: np.random.Generator, limit: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """``(histories, targets)``: one example per (user, position >= 1 when chronological;
    every position otherwise), a random subset of ``limit`` when given."""
    first = 1 if data.chronological else 0
    where = [(u, t) for u, s in enumerate(data.seqs) if len(s) > 1 for t in range(first, len(s))]
    if limit is not None and len(where) > limit:
        where = [where[i] for i in np.sort(rng.choice(len(where), limit, replace=False))]
    hist, target = [], np.empty(len(where), np.int64)
    for i, (u, t) in enumerate(where):
        s = data.seqs[u]
        before = s[:t] if data.chronological else np.delete(s, t)
        hist.append(before[-history:])
        target[i] = s[t]
    return hist, target


def rec_eval_targets(
    train: RecData, test_inter: pl.DataFrame, sid_items: pl.Series
) -> tuple[list[str], list[np.ndarray], list[set[int]]]:
    """``(users, histories, relevant)`` for test users that have training items: all their
    training items in sequence order (the model reads the last ``history``; all are
    excluded from the answers), and the test item rows not seen in training."""
    test = user_sequences(test_inter, sid_items)
    seen = dict(zip(train.users, train.seqs, strict=True))
    users, hists, rel = [], [], []
    for u, s in zip(test.users, test.seqs, strict=True):
        if u not in seen:
            continue
        target = set(s.tolist()) - set(seen[u].tolist())
        if target:
            users.append(u)
            hists.append(seen[u])
            rel.append(target)
    return users, hists, rel


def search_pairs(queries: pl.DataFrame, sid_items: pl.Series) -> tuple[list[str], np.ndarray, int]:
    """``(query strings, item rows, dropped)`` of the ``(query, item_id)`` rows."""
    rows = item_rows(sid_items, queries["item_id"])
    keep = rows >= 0
    q = [x for x, k in zip(queries["query"].to_list(), keep, strict=True) if k]
    return q, rows[keep], int((~keep).sum())


def search_eval_targets(
    queries: pl.DataFrame, sid_items: pl.Series
) -> tuple[list[str], list[set[int]]]:
    """``(distinct query strings, relevant item rows per query)`` of the test queries."""
    q, rows, _ = search_pairs(queries, sid_items)
    rel: dict[str, set[int]] = {}
    for text, r in zip(q, rows.tolist(), strict=True):
        rel.setdefault(text, set()).add(r)
    return list(rel), list(rel.values())


def personal_queries(interactions: pl.DataFrame, queries: pl.DataFrame) -> pl.DataFrame:
    """Distinct ``(user_id, query, item_id)`` triples of one side: when ``interactions``
    carry user tags, the tags each row's user gave its item, kept where the tag is one of
    ``queries``' strings; else the user's items joined with the ``(query, item_id)`` rows
    of ``queries`` that name them."""
    if has_user_tags(interactions):
        known = queries["query"].unique().implode()
        tags = interactions.select("user_id", "item_id", pl.col(TAGS).alias("query"))
        out = tags.explode("query").drop_nulls("query").filter(pl.col("query").is_in(known))
    else:
        out = interactions.select("user_id", "item_id").join(queries, on="item_id")
    return out.select("user_id", "query", "item_id").unique().sort("user_id", "query", "item_id")


def personal_eval_targets(
    train: pl.DataFrame, test: pl.DataFrame, sid_items: pl.Series
) -> tuple[list[str], list[str], list[set[int]], list[set[int]]]:
    """``(users, queries, relevant, exclude)`` per test ``(user, query)`` of the triples
    ``test`` (:func:`personal_queries` of the test side) that are not ``train`` triples:
    relevant item rows, and the rows of the user's train triples of that query."""
    on = ["user_id", "query", "item_id"]
    new = test.join(train, on=on, how="anti")
    new = new.with_columns(_r=pl.Series(item_rows(sid_items, new["item_id"])))
    new = new.filter(pl.col("_r") >= 0)
    old = train.with_columns(_r=pl.Series(item_rows(sid_items, train["item_id"])))
    rel = new.group_by("user_id", "query").agg(pl.col("_r")).sort("user_id", "query")
    seen = old.filter(pl.col("_r") >= 0).group_by("user_id", "query").agg(_x=pl.col("_r"))
    rel = rel.join(seen, on=["user_id", "query"], how="left", maintain_order="left")
    excl = [set(x or []) for x in rel["_x"].to_list()]
    return rel["user_id"].to_list(), rel["query"].to_list(), [set(x) for x in rel["_r"]], excl


def split_personal_targets(
    train: Dataset, test: Dataset, sid_items: pl.Series
) -> tuple[list[str], list[str], list[set[int]], list[set[int]]]:
    """:func:`personal_eval_targets` of the two sides of a split: triples of each side
    (:func:`personal_queries`, with the train side's query strings)."""
    known = train.queries
    return personal_eval_targets(
        personal_queries(train.interactions, known),
        personal_queries(test.interactions, known),
        sid_items,
    )


def sample_inputs(rng: np.random.Generator, n: int, max_inputs: int | None) -> np.ndarray:
    """Sorted indices of a seeded sample of ``max_inputs`` of ``n`` inputs (all when
    ``max_inputs`` is None or not below ``n``)."""
    if max_inputs is not None and n > max_inputs:
        return np.sort(rng.choice(n, max_inputs, replace=False))
    return np.arange(n)


def recall_at(ranked: list[list[int]], relevant: list[set[int]], k: int) -> float:
    """Mean over inputs of ``|top-k ∩ relevant| / |relevant|`` (inputs with an empty
    relevant set are skipped)."""
    keep = [i for i, rel in enumerate(relevant) if rel]
    if not keep:
        return 0.0
    hit = hits_of_lists([ranked[i] for i in keep], [relevant[i] for i in keep], k)
    return float(hit_metrics(hit, np.array([len(relevant[i]) for i in keep]), k)["recall"].mean())
