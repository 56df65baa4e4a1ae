"""``graph-knn``: the run's co-interaction graph used as a recommender, with no learning.

``score(u, i) = sum over u's distinct training items j of w(j, i)``, where ``w`` is the
edge weight ``build-graph`` wrote (shared users; 0 without an edge); with ``normalized``
weights each is divided by ``sqrt(deg(j) deg(i))``, ``deg`` the node's weighted degree
over every edge type. It is the HGNN's floor: an embedding learned from a graph should
recommend at least as well as the graph. The variant (raw or normalized) is chosen on
validation (:func:`choose_graph_knn`: the validation users' fit-window items as history,
their label-window items as targets; the graph lacks those labels, so nothing leaks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.graphs.store import load_graph, load_node_ids
from audiograph.twotower.baselines import candidate_vectors
from audiograph.twotower.lightgcn_tune import ValidationRecall
from audiograph.twotower.metrics import ranking_pairs

VARIANTS = ("raw", "normalized")


def graph_edges(graph_dir: str | Path, items: pl.DataFrame) -> pl.DataFrame:
    """Every directed edge of the graph as ``(a, b, w)`` rows of ``items`` (``a``, ``b``:
    int64 item rows; ``w``: float64 weight) plus ``deg_a``, ``deg_b`` (weighted degrees);
    edges of nodes outside ``items`` are dropped."""
    data, nodes = load_graph(graph_dir), load_node_ids(graph_dir)
    rows = items.select("item_id").with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    node_row = nodes.join(rows, on="item_id", how="left", maintain_order="left")
    lookup = {
        t: node_row.filter(pl.col("item_type") == t).sort("node_index")["row"].to_numpy()
        for t in data.node_types
    }
    parts = []
    for s, _, d in data.edge_types:
        ei, w = data[s, "co", d].edge_index.numpy(), data[s, "co", d].edge_weight.numpy()
        parts.append(
            pl.DataFrame({"a": lookup[s][ei[0]], "b": lookup[d][ei[1]], "w": w.astype(np.float64)})
        )
    edges = pl.concat(parts).drop_nulls() if parts else pl.DataFrame(schema=_EDGES)
    deg = edges.group_by("a").agg(deg=pl.col("w").sum())
    return edges.join(deg.rename({"a": "b", "deg": "deg_b"}), on="b").join(
        deg.rename({"deg": "deg_a"}), on="a"
    )


_EDGES = {"a": pl.Int64, "b": pl.Int64, "w": pl.Float64}


def graph_knn_scores(
    edges: pl.DataFrame,
    history: pl.DataFrame,
    users: pl.Series,
    items: pl.DataFrame,
    cand_rows: np.ndarray,
    normalized: bool,
) -> np.ndarray:
    """float32 ``[U, C]``: the graph-kNN score of every user (``users``) for every
    candidate (item rows ``cand_rows``); ``history``: ``user_id, item_id`` (distinct pairs
    count once); a user without an edge to any candidate scores 0 everywhere."""
    rows = items.select("item_id").with_row_index("a").with_columns(pl.col("a").cast(pl.Int64))
    uidx = pl.DataFrame({"user_id": users, "u": np.arange(len(users), dtype=np.int64)})
    cand = pl.DataFrame({"b": cand_rows.astype(np.int64), "c": np.arange(len(cand_rows))})
    h = history.select("user_id", "item_id").unique().join(uidx, on="user_id").join(rows, "item_id")
    weight = pl.col("w") / (pl.col("deg_a") * pl.col("deg_b")).sqrt() if normalized else pl.col("w")
    e = edges.join(cand, on="b").select("a", "c", weight.alias("s"))
    sums = h.select("u", "a").join(e, on="a").group_by("u", "c").agg(pl.col("s").sum())
    out = np.zeros((len(users), len(cand_rows)), np.float32)
    out[sums["u"].to_numpy(), sums["c"].to_numpy()] = sums["s"].to_numpy()
    return out


def graph_knn(
    edges: pl.DataFrame,
    train: pl.DataFrame,
    users: pl.Series,
    items: pl.DataFrame,
    target_type: str,
    normalized: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``(user_vecs [U, C], item_vecs [I, C])`` scoring ``graph_knn_scores`` of ``train``'s
    histories by dot product over the ``target_type`` candidates
    (:func:`~audiograph.twotower.baselines.candidate_vectors`)."""
    cand_rows = np.flatnonzero((items["item_type"] == target_type).to_numpy())
    scores = graph_knn_scores(edges, train, users, items, cand_rows, normalized)
    return candidate_vectors(scores, cand_rows, items.height)


@dataclass
class GraphKNNChoice:
    """The variant chosen on validation and each variant's validation recall@k."""

    normalized: bool
    validation: dict[str, float]

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (for the evaluation report)."""
        chosen = VARIANTS[int(self.normalized)]
        return {"tuned": True, "chosen": chosen, "validation": self.validation}


def choose_graph_knn(
    edges: pl.DataFrame,
    fit: pl.DataFrame,
    labels: pl.DataFrame,
    val_users: pl.Series,
    items: pl.DataFrame,
    target_type: str,
    k: int = 10,
) -> GraphKNNChoice:
    """Raw or normalized weights, whichever ranks the ``val_users``' new ``target_type``
    label pairs better (``recall@k``, histories from ``fit``; ties: raw, the graph as
    written). Only ``fit``, ``labels`` and the graph (which lacks the validation users'
    labels) are read."""
    fit_v = fit.filter(pl.col("user_id").is_in(val_users.implode()))
    lab_v = labels.filter(pl.col("user_id").is_in(val_users.implode()))
    pairs = ranking_pairs(items, fit, lab_v, target_type)  # popularity: every fit user's
    users = pairs.users["user_id"]
    recall = ValidationRecall(pairs, users, k)
    scores = {
        v: recall(*graph_knn(edges, fit_v, users, items, target_type, v == "normalized"))
        for v in VARIANTS
    }
    return GraphKNNChoice(scores["normalized"] > scores["raw"], scores)
