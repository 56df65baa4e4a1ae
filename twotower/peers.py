"""The strongest simple peers of the quality tables: EASE, ALS and BM25 item-kNN, each
tuned on validation only and refitted on all of train.

* :func:`ease_scores` — EASE (Steck 2019): the closed-form item-item ridge regression
  ``B = I - P diag(1 / diag P)``, ``P = (X^T X + lambda I)^-1``, scores ``X B``, with ``X``
  the binary user x item matrix of the distinct training pairs (all types). Computed from
  one eigendecomposition of the smaller Gram matrix (``X X^T`` through the push-through
  identity when there are fewer users than items), so a grid of ``lambda`` costs one
  factorisation; only the candidates' columns of ``B`` are formed.
* ``als`` / ``itemknn`` — :mod:`implicit`'s ``AlternatingLeastSquares`` on BM25-weighted
  ``X`` and ``BM25Recommender`` (item-item cosine of BM25-weighted columns, ``K``
  neighbours), where :mod:`implicit` is installed (:data:`HAS_IMPLICIT`; the ``bench``
  extra); elsewhere they are skipped with that reason.

:func:`tune_peer` chooses a peer's setting on the split's windows as LightGCN's tuning does
(fit on the fit window, ``recall@k`` of the label window's new target-type pairs, each
user's fit items excluded); :func:`peer_vectors` then fits the chosen setting on all of
train. Every model returns ``(user_vecs, item_vecs)`` for
:func:`~audiograph.twotower.metrics.evaluate_vectors`.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from audiograph.twotower.baselines import candidate_vectors
from audiograph.twotower.lightgcn_tune import ValidationRecall
from audiograph.twotower.metrics import ranking_pairs

HAS_IMPLICIT = importlib.util.find_spec("implicit") is not None
PEERS = ("ease", "als", "itemknn")
GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "ease": tuple({"lam": v} for v in (10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)),
    "als": tuple(
        {"factors": f, "regularization": r} for f in (32, 64, 128) for r in (0.01, 0.1, 1.0)
    ),
    "itemknn": tuple({"K": k} for k in (50, 100, 200, 500, 1000, 2000)),
}
"""The settings each peer's tuning tries (in order; ties keep the earlier)."""


def user_item_matrix(train: pl.DataFrame, users: pl.Series, items: pl.DataFrame) -> Any:
    """The binary ``scipy.sparse`` CSR ``[U, I]`` of ``train``'s distinct (user, item)
    pairs, rows ``users``, columns ``items``'s rows."""
    from scipy.sparse import csr_matrix

    uidx = pl.DataFrame({"user_id": users, "u": np.arange(len(users), dtype=np.int64)})
    iidx = items.select("item_id").with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
    p = train.select("user_id", "item_id").unique().join(uidx, on="user_id").join(iidx, "item_id")
    ones = np.ones(p.height, np.float32)
    shape = (len(users), items.height)
    return csr_matrix((ones, (p["u"].to_numpy(), p["i"].to_numpy())), shape=shape)


def ease_scores(x: Any, cand_rows: np.ndarray, lams: Sequence[float]) -> list[np.ndarray]:
    """EASE's ``[U, C]`` scores of the binary CSR ``x`` ``[U, I]`` for each ``lambda`` of
    ``lams`` (one eigendecomposition for all)."""
    xd = x.toarray().astype(np.float64)
    xc = xd[:, cand_rows]  # [U, C]
    n_users, n_items = xd.shape
    out = []
    if n_users <= n_items:  # (X^T X + l I)^-1 X^T = X^T (X X^T + l I)^-1
        evals, q = np.linalg.eigh(xd @ xd.T)
        qxc = q.T @ xc
        for lam in lams:
            m = q @ (qxc / (evals + lam)[:, None])  # (K + l I)^-1 X[:, c] = X P[:, c]
            p_cc = (1.0 - (xc * m).sum(0)) / lam
            out.append((xc - m / p_cc).astype(np.float32))
    else:
        evals, q = np.linalg.eigh(xd.T @ xd)
        qc = q[cand_rows]  # [C, I]
        cols = np.arange(len(cand_rows))
        for lam in lams:
            p = q @ (qc.T / (evals + lam)[:, None])  # P[:, c], [I, C]
            b = -p / p[cand_rows, cols]
            b[cand_rows, cols] = 0.0
            out.append((xd @ b).astype(np.float32))
    return out


def _implicit_fit(name: str, x: Any, setting: dict[str, Any], seed: int) -> Any:
    """A fitted :mod:`implicit` model (``als`` or ``itemknn``) of the CSR ``x`` ``[U, I]``."""
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender, bm25_weight

    from audiograph.samplers.threads import FREE_CORES

    with warnings.catch_warnings():  # its BLAS-threads advice and sparse-format notes
        warnings.simplefilter("ignore")
        if name == "als":
            model = AlternatingLeastSquares(
                **setting, iterations=15, random_state=seed, num_threads=FREE_CORES.free()
            )
            model.fit(bm25_weight(x, K1=100, B=0.8).tocsr(), show_progress=False)
        else:
            model = BM25Recommender(**setting, num_threads=FREE_CORES.free())
            model.fit(x, show_progress=False)
    return model


def peer_vectors(
    name: str,
    train: pl.DataFrame,
    users: pl.Series,
    items: pl.DataFrame,
    target_type: str,
    settings: Sequence[dict[str, Any]],
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(user_vecs, item_vecs)`` of peer ``name`` fitted on ``train`` for each of
    ``settings`` (``users``/``items``: the rows; users without a training pair get zero
    rows, the harness's popularity fallback)."""
    x = user_item_matrix(train, users, items)
    cand_rows = np.flatnonzero((items["item_type"] == target_type).to_numpy())
    if name == "ease":
        scores = ease_scores(x, cand_rows, [s["lam"] for s in settings])
        return [candidate_vectors(s, cand_rows, items.height) for s in scores]
    if not HAS_IMPLICIT:
        raise RuntimeError("implicit is not installed (pip install 'audiograph[bench]')")
    out = []
    for setting in settings:
        model = _implicit_fit(name, x, setting, seed)
        if name == "als":
            u, i = (np.asarray(m, np.float32) for m in (model.user_factors, model.item_factors))
            out.append((np.where(x.getnnz(1)[:, None] > 0, u, 0.0).astype(np.float32), i))
        else:
            scores = (x @ model.similarity[:, cand_rows]).toarray()
            out.append(candidate_vectors(scores, cand_rows, items.height))
    return out


def tune_peer(
    name: str,
    fit: pl.DataFrame,
    labels: pl.DataFrame,
    items: pl.DataFrame,
    target_type: str,
    k: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """The setting of :data:`GRIDS` ``[name]`` with the best validation ``recall@k``
    (fitted on ``fit``, ranked against ``labels``' new ``target_type`` pairs); returns
    ``{"tuned": True, "chosen": setting, "validation": {setting: recall}, "seconds"}``.
    Only ``fit`` and ``labels`` are read."""
    t0 = time.perf_counter()
    users = pl.concat([fit["user_id"], labels["user_id"]]).unique().sort()
    recall = ValidationRecall(ranking_pairs(items, fit, labels, target_type), users, k)
    grid = GRIDS[name]
    scores = [recall(*v) for v in peer_vectors(name, fit, users, items, target_type, grid, seed)]
    best = int(np.argmax(scores))  # the first of equal scores
    return {
        "tuned": True,
        "chosen": grid[best],
        "validation": {_label(s): round(v, 6) for s, v in zip(grid, scores, strict=True)},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _label(setting: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in setting.items())
