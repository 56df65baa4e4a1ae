"""Recommendation-shaped validation of the HGNN: HGNN-KNN's recall@k on the split's
validation users, the task the embedding feeds (not edge ranking against uniform nodes).

Available when the graph was built from the graph part of an ``audiograph split`` (the
graph manifest's ``dataset`` is ``SPLIT/graph``, and ``SPLIT`` holds the ``fit`` and
``labels`` windows and ``validation_users.parquet``). That graph already lacks the
validation users' label-window pairs, so scoring them is leak-free. Per epoch:

* item vectors: the model's full-graph embeddings (every neighbour, as ``export`` computes
  them), one row per graph node;
* a validation user's vector: the weight-aware mean of its *fit*-window items' vectors,
  L2-normalized (HGNN-KNN, as ``evaluate`` scores it on the test);
* candidates: the nodes of ``val_type`` (None: every node); each user's fit items are
  excluded; relevant: its label-window items of that type it has not in fit;
* ``recall@k`` over the users with >= 1 relevant item; users without a vector rank by
  fit popularity; ties count against the relevant item (:mod:`audiograph.core.ranking`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from audiograph.core.ranking import rank_items
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.store import load_node_ids, read_manifest


@dataclass
class RecValidation:
    """HGNN-KNN validation recall of one graph's split (see the module docstring).

    Attributes:
        offsets: first row of each node type in the stacked ``[N, h]`` item table.
        hist: ``(user [H], row [H], weight [H])`` the validation users' fit interactions.
        n_users: validation users with >= 1 relevant item (the ``user`` indices).
        cand_rows: ``[C]`` stacked rows of the candidates.
        excluded / relevant: ``(user, candidate)`` pairs.
        popularity: float ``[C]``, distinct fit users of each candidate (the fallback).
        k: cut-off.
    """

    offsets: dict[str, int]
    hist: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    n_users: int
    cand_rows: torch.Tensor
    excluded: tuple[np.ndarray, np.ndarray]
    relevant: tuple[np.ndarray, np.ndarray]
    popularity: torch.Tensor
    k: int = 10

    @classmethod
    def of_graph(
        cls, graph_dir: str | Path, node_types: list[str], val_type: str | None, k: int = 10
    ) -> RecValidation | None:
        """The validation of ``graph_dir``'s split (``node_types``: the stacking order),
        or None when the graph is not a split's, or no validation user has a relevant
        label of ``val_type``."""
        source = read_manifest(graph_dir).get("dataset")
        split = Path(source).parent if source else None
        if split is None or Path(source).name != "graph":
            return None
        users_file = split / "validation_users.parquet"
        if not (users_file.is_file() and (split / "fit").is_dir() and (split / "labels").is_dir()):
            return None
        nodes = load_node_ids(graph_dir)
        sizes = nodes.group_by("item_type").len()
        size = dict(zip(sizes["item_type"], sizes["len"], strict=True))
        offsets, start = {}, 0
        for t in node_types:
            offsets[t], start = start, start + int(size.get(t, 0))
        rows = nodes.with_columns(
            row=pl.col("node_index")
            + pl.col("item_type").replace_strict(offsets, return_dtype=pl.Int64)
        ).select("item_id", "item_type", "row")
        val_users = pl.read_parquet(users_file).select("user_id").unique()
        every_fit = read_dataset(split / "fit").interactions
        fit = every_fit.join(val_users, on="user_id")
        labels = read_dataset(split / "labels").interactions.join(val_users, on="user_id")
        cand = rows if val_type is None else rows.filter(pl.col("item_type") == val_type)
        cand = cand.sort("row").with_row_index("c")
        pair = ["user_id", "item_id"]
        seen = fit.select(pair).unique()
        rel = labels.select(pair).unique().join(seen, on=pair, how="anti").join(cand, "item_id")
        ev = rel["user_id"].unique().sort()
        if ev.len() == 0:
            return None
        uidx = pl.DataFrame({"user_id": ev, "u": np.arange(ev.len(), dtype=np.int64)})
        rel = rel.join(uidx, on="user_id")
        ex = seen.join(cand, on="item_id").join(uidx, on="user_id")
        h = (
            fit.select("user_id", "item_id", "weight")
            .join(uidx, on="user_id")
            .join(rows, "item_id")
        )
        every_fit = read_dataset(split / "fit").interactions.select(pair).unique()
        pop = every_fit.join(cand, on="item_id")["c"].to_numpy()
        return cls(
            offsets,
            tuple(  # type: ignore[arg-type]
                torch.from_numpy(h[c].to_numpy().astype(d))
                for c, d in (("u", np.int64), ("row", np.int64), ("weight", np.float32))
            ),
            ev.len(),
            torch.from_numpy(cand["row"].to_numpy().astype(np.int64)),
            (ex["u"].to_numpy(), ex["c"].to_numpy().astype(np.int64)),
            (rel["u"].to_numpy(), rel["c"].to_numpy().astype(np.int64)),
            torch.from_numpy(np.bincount(pop, minlength=cand.height).astype(np.float32)),
            k,
        )

    def __call__(self, emb: dict[str, torch.Tensor]) -> float:
        """``recall@k`` of the node embeddings ``emb`` (``{type: [n_t, h]}``)."""
        table = torch.cat([emb[t] for t in self.offsets]).float()
        table = F.normalize(table, dim=-1)
        u, r, w = self.hist
        sums = torch.zeros(self.n_users, table.shape[1]).index_add_(0, u, table[r] * w[:, None])
        users = F.normalize(sums, dim=-1)
        fallback = ~torch.any(users != 0, dim=1)
        ranks = rank_items(
            users,
            table[self.cand_rows],
            0,
            self.relevant,
            self.k,
            exclude=self.excluded,
            fallback=(fallback, self.popularity),
        ).ranks.numpy()
        hits = np.bincount(self.relevant[0], ranks < self.k, self.n_users)
        n_rel = np.bincount(self.relevant[0], minlength=self.n_users)
        return float(np.mean(hits / n_rel))
