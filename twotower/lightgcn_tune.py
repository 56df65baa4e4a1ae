"""LightGCN tuned on validation only, so that the baseline is beaten at its best.

:func:`tune_lightgcn` fits every setting of a small grid on the *fit* window of a split and
scores the *label* window after every epoch (:class:`ValidationRecall`: the
``recall@k`` that :func:`~audiograph.twotower.metrics.evaluate_vectors` reports, without
its pair indexing, lists and breakdowns, so cheap enough for every epoch); the evaluation
then refits the chosen setting on all of train for the chosen number of epochs. No test
interaction is an input.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import Any

import numpy as np
import polars as pl
import torch

from audiograph.core.errors import ContractError
from audiograph.core.ranking import rank_items
from audiograph.twotower.baselines import fit_lightgcn
from audiograph.twotower.config import LightGCNConfig
from audiograph.twotower.metrics import RankingPairs, ranking_pairs, user_rows


@dataclass
class LightGCNTuning:
    """The outcome of :func:`tune_lightgcn`: ``chosen`` (the grid point with its best epoch
    count as ``epochs``), its validation ``best`` and, per grid point (``"dim=64
    negatives=type reg=0.0001"``), the validation metric after every epoch trained."""

    chosen: LightGCNConfig
    metric: str
    best: float
    curves: dict[str, list[float]]
    seconds: float

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (for the evaluation report)."""
        c = self.chosen
        return {
            "tuned": True,
            "chosen": {"dim": c.dim, "negatives": c.negatives, "reg": c.reg, "epochs": c.epochs},
            "metric": self.metric,
            "best": round(self.best, 6),
            "validation": {p: [round(v, 6) for v in curve] for p, curve in self.curves.items()},
            "seconds": round(self.seconds, 2),
        }


def tune_lightgcn(
    fit: pl.DataFrame,
    labels: pl.DataFrame,
    items: pl.DataFrame,
    target_type: str,
    base: LightGCNConfig | None = None,
    *,
    dims: Sequence[int] = (64, 128),
    negatives: Sequence[str] = ("type", "all"),
    regs: Sequence[float] | None = None,
    max_epochs: int = 60,
    patience: int = 10,
    k: int = 10,
) -> LightGCNTuning:
    """Pick LightGCN's ``dim``, ``negatives``, ``reg`` and number of epochs on validation.

    Every grid point (``dims`` x ``negatives`` x ``regs``, in that order; ``regs`` None:
    ``base.reg``; the other settings from ``base``) is fitted on the ``fit`` interactions
    for at most ``max_epochs``. After every epoch :class:`ValidationRecall` measures
    ``recall@k`` of ranking the ``target_type`` items for the users of ``labels`` against
    their new label pairs (each user's ``fit`` items excluded, as the test excludes
    train); a point stops after ``patience`` epochs without a better value, but not before
    epoch ``2 * patience`` (the first epochs score about as popularity does, then dip
    before they climb). The best (point, epoch) wins; ties go to the earlier point and the
    fewer epochs. On a catalog with one item type ``negatives`` is cut to its first entry
    (every choice draws the same negatives). Only ``fit`` and ``labels`` are read, never a
    test set, and the result is a function of them and ``base.seed``. Raises
    ContractError when no label pair is a new ``target_type`` pair.
    """
    t0 = time.perf_counter()
    base = base or LightGCNConfig()
    users = pl.concat([fit["user_id"], labels["user_id"]]).unique().sort()
    pairs = ranking_pairs(items, fit, labels, target_type)
    if pairs.users.height == 0:
        raise ContractError(f"the label window has no new {target_type!r} pair to validate on")
    recall = ValidationRecall(pairs, users, k)
    negs = list(negatives) if items["item_type"].n_unique() > 1 else list(negatives)[:1]
    best: tuple[float, LightGCNConfig] | None = None
    curves: dict[str, list[float]] = {}
    for dim, neg, reg in product(dims, negs, [base.reg] if regs is None else regs):
        cfg = replace(base, dim=dim, negatives=neg, reg=reg, epochs=max_epochs)
        curve = curves.setdefault(f"dim={dim} negatives={neg} reg={reg:g}", [])

        def score(epoch: int, u: np.ndarray, i: np.ndarray, curve=curve) -> bool:
            curve.append(recall(u, i))
            return epoch >= 2 * patience and epoch - (int(np.argmax(curve)) + 1) >= patience

        fit_lightgcn(fit, users, items, cfg, score)
        top = int(np.argmax(curve))
        if best is None or curve[top] > best[0]:
            best = (curve[top], replace(cfg, epochs=top + 1))
    assert best is not None, "empty LightGCN grid"
    return LightGCNTuning(best[1], f"recall@{k}", best[0], curves, time.perf_counter() - t0)


class ValidationRecall:
    """``recall(user_vecs, item_vecs)``: the ``recall@k`` that
    :func:`~audiograph.twotower.metrics.evaluate_vectors` reports for ``train=fit``,
    ``test=labels`` (each user's ``fit`` items excluded, users with a zero vector ranked by
    ``fit`` popularity, ties counted against the label as
    :mod:`audiograph.core.ranking` does), with the pairs indexed once and only the ranks
    below ``k`` resolved.

    Args:
        pairs: :func:`~audiograph.twotower.metrics.ranking_pairs` of ``(items, fit,
            labels, target_type)``; the item vectors' rows are ``items``'s.
        users: ``[U]`` ids of the user vectors' rows (every evaluated user among them).
        k: cut-off.
        batch: users scored per matmul.
    """

    def __init__(
        self, pairs: RankingPairs, users: pl.Series, k: int = 10, batch: int = 1024
    ) -> None:
        rows = user_rows(pairs, users)
        if rows.null_count():
            raise ValueError("every label user needs a row in users")
        self.rows, self.cand_rows, self.batch = rows.to_numpy(), pairs.cand_rows, batch
        self.k = min(k, len(pairs.cand_rows))
        self.popularity = torch.from_numpy(pairs.popularity.astype(np.float32))
        self.exclude, self.relevant = pairs.excluded, pairs.relevant
        self.n_rel = np.bincount(self.relevant[0], minlength=pairs.users.height)

    def __call__(self, user_vecs: np.ndarray, item_vecs: np.ndarray) -> float:
        """Mean over the label users of ``|relevant ∩ top k| / |relevant|``."""
        uv = np.asarray(user_vecs, np.float32)[self.rows]
        iv = torch.from_numpy(np.ascontiguousarray(item_vecs[self.cand_rows], dtype=np.float32))
        fallback = torch.from_numpy(~np.any(uv != 0, axis=1))
        ranks = rank_items(
            torch.from_numpy(uv),
            iv,
            0,
            self.relevant,
            self.k,
            exclude=self.exclude,
            fallback=(fallback, self.popularity),
            chunk=self.batch,
        ).ranks.numpy()
        hits = np.bincount(self.relevant[0], ranks < self.k, len(uv))
        return float(np.mean(hits / self.n_rel))
