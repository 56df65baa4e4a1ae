"""Offline top-k evaluation of user/item vectors (the 2T-HGNN paper's protocol).

Score = dot product; candidates are the items of one target type; each user's training
items are excluded; relevant items are the user's test items of the target type (minus
any the user already has in train). Reported over the users with at least one relevant
item, overall, for warm/cold users (cold = no training interaction with the target type),
per item-popularity tier, and over the test pairs of new and of rare items.

Ties follow :mod:`audiograph.core.ranking`: every metric counts them against the relevant
item (it is in the top k when fewer than k other candidates score at least as high;
tied relevant items in item-row order), so a model that scores all items the same scores
about 0; the top-k lists behind ``coverage`` break ties by item row (the lower first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from audiograph.core.errors import ContractError
from audiograph.core.metrics import hit_metrics, hits_of_ranks
from audiograph.core.ranking import rank_items

TIERS = (("head", 0.01), ("torso", 0.20), ("tail", 1.0))  # cumulative share of items
RARE = 3  # rare items: 1 .. RARE - 1 distinct training users (0: new items, apart)


def check_item_type(items: pl.DataFrame, item_type: str | None, what: str) -> None:
    """A one-line error unless ``item_type`` (None: any) is a type of the catalog
    ``items``; ``what`` names the setting, e.g. ``"--val-type"``."""
    known = items["item_type"].unique().sort().to_list()
    if item_type is not None and item_type not in known:
        shown = ", ".join(str(t) for t in known)
        raise ContractError(f"{what} {item_type!r}: unknown item type (known: {shown})")


def check_test_items(test: pl.DataFrame, items: pl.DataFrame, where: str) -> None:
    """A one-line error when not one of the ``test`` interactions has an item of the
    catalog ``items`` (e.g. a test set of another dataset)."""
    if test.height and not test["item_id"].is_in(items["item_id"].implode()).any():
        raise ContractError(
            f"{where}: none of the test interactions' items is in the catalog (e.g. item_id "
            f"{test['item_id'][0]!r}); evaluate on the test side of a split of this dataset"
        )


@dataclass(frozen=True)
class RankingPairs:
    """Who is ranked on what, the protocol's one definition (module docstring): the
    candidates are the items of the target type; a user is evaluated when it has at least
    one new pair (a ``new`` pair it does not also have in ``known``).

    Attributes:
        cand_rows: ``[C]`` item rows of the candidates; candidate ``c`` is ``items[cand_rows[c]]``.
        users: ``(user_id, e)``, the evaluated users sorted by id, ``e`` their index.
        excluded: ``(e, c)`` arrays, the evaluated users' known pairs (never ranked).
        relevant: ``(e, c)`` arrays, the evaluated users' new pairs.
        popularity: int ``[C]``, each candidate's distinct known users (every user's).
    """

    cand_rows: np.ndarray
    users: pl.DataFrame
    excluded: tuple[np.ndarray, np.ndarray]
    relevant: tuple[np.ndarray, np.ndarray]
    popularity: np.ndarray


def ranking_pairs(
    items: pl.DataFrame, known: pl.DataFrame, new: pl.DataFrame, target_type: str
) -> RankingPairs:
    """The :class:`RankingPairs` of ranking ``target_type`` items of the catalog ``items``,
    ``known`` (e.g. train) and ``new`` (e.g. test) interactions with ``user_id, item_id``;
    no evaluated user when no new pair has a candidate item."""
    pair = ["user_id", "item_id"]
    cand_rows = np.flatnonzero((items["item_type"] == target_type).to_numpy())
    cand = pl.DataFrame({"item_id": items["item_id"][cand_rows], "c": np.arange(len(cand_rows))})
    tr = known.select(pair).unique().join(cand, on="item_id")
    te = new.select(pair).unique().join(cand, on="item_id").join(tr, on=pair, how="anti")
    ev_users = te["user_id"].unique().sort()
    ev = pl.DataFrame({"user_id": ev_users, "e": np.arange(ev_users.len())})
    tr_e, te_e = tr.join(ev, on="user_id"), te.join(ev, on="user_id")
    return RankingPairs(
        cand_rows,
        ev,
        (tr_e["e"].to_numpy(), tr_e["c"].to_numpy()),
        (te_e["e"].to_numpy(), te_e["c"].to_numpy()),
        np.bincount(tr["c"].to_numpy(), minlength=len(cand_rows)),
    )


def user_rows(pairs: RankingPairs, users: pl.Series) -> pl.Series:
    """Per evaluated user (in ``e`` order), its row in ``users`` (null: not there)."""
    rows = pl.DataFrame({"user_id": users, "u": np.arange(len(users))})
    return pairs.users.join(rows, on="user_id", how="left").sort("e")["u"]


def evaluate_vectors(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    users: pl.Series,
    items: pl.DataFrame,
    train: pl.DataFrame,
    test: pl.DataFrame,
    target_type: str,
    k: int = 10,
    n: int = 100,
    batch: int = 1024,
    per_user: bool = False,
) -> dict[str, Any]:
    """Top-k metrics of ranking the ``target_type`` items by ``user_vecs @ item_vecs.T``.

    Args:
        user_vecs: float ``[U, d]``; row ``u`` belongs to ``users[u]``.
        item_vecs: float ``[I, d]``; row ``i`` belongs to ``items[i]``.
        users: ``[U]`` user ids. Evaluated users missing from it, or whose vector is all
            zeros (a model without a cold-user path), get the popularity ranking (distinct
            training users; equally popular items tie) and are counted in
            ``"fallback_users"``.
        items: ``[I]`` rows with ``item_id``, ``item_type``.
        train: training interactions (``user_id``, ``item_id``): excluded from each
            user's candidates, and the source of item popularity and warm/cold.
        test: test interactions (``user_id``, ``item_id``).
        target_type: the item type ranked.
        k: cut-off of ``hr``, ``recall``, ``ndcg`` and coverage.
        n: length of the ranked list for ``mrr``.
        batch: users scored per matmul.
        per_user: also return each evaluated user's ``hr@k`` (to pair two models user by
            user, e.g. for a bootstrap interval of their difference).

    Returns:
        ``{"target_type", "k", "n", "candidates", "fallback_users", <metrics>,
        "warm": <metrics>, "cold": <metrics>, "no_history": <metrics>,
        "tiers": {"head"|"torso"|"tail": ...}}``: ``warm`` users have a training
        interaction with the target type, ``cold`` users have training interactions but
        none with it, ``no_history`` users have none at all;
        where ``<metrics>`` is ``users`` (evaluated users), ``hr@k`` (share with >= 1
        relevant in the top k), ``recall@k`` (mean of ``|rel ∩ top k| / |rel|``),
        ``ndcg@k`` (binary gains, ideal DCG over ``min(|rel|, k)`` hits), ``mrr`` (mean
        of 1 / rank of the first relevant item in the top n, 0 if none) and ``coverage``
        (distinct items in any top-k list / number of candidates). Tiers rank the
        candidates by training popularity (distinct training users; ties by item row):
        ``head`` = top 1 %, ``torso`` = the next 19 %, ``tail`` = the rest; items
        without training users are always ``tail``. A tier's ``hr@k``/``recall@k``
        count only relevant items of that tier, over users with >= 1 of them. A group
        with no users has ``None`` metrics.

        Item slices, over the test *pairs* (user, candidate item) of the evaluated users:
        ``"new_items"``: pairs whose item has no training user at all; ``"rare_items"``:
        pairs whose item has 1 or 2 distinct training users (``< RARE``, new items
        excluded). Each is ``{"pairs", "items" (distinct items), "recall@k"}``, where
        ``recall@k`` is the share of the pairs whose item is in that user's top k
        (``None`` without pairs).

        With ``per_user``: ``"per_user": {"user_id": [...], "hr@k": [0 | 1, ...], "group":
        ["warm" | "cold" | "no_history", ...]}``, one entry per evaluated user (sorted by
        id); JSON-serialisable.
    """
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got k={k}, n={n}")
    user_vecs, item_vecs = np.asarray(user_vecs), np.asarray(item_vecs)
    if user_vecs.shape[0] != len(users) or item_vecs.shape[0] != items.height:
        raise ValueError(
            f"vectors {user_vecs.shape} / {item_vecs.shape} do not match "
            f"{len(users)} users / {items.height} items"
        )
    if user_vecs.shape[1] != item_vecs.shape[1]:
        raise ValueError(f"user dim {user_vecs.shape[1]} != item dim {item_vecs.shape[1]}")
    check_item_type(items, target_type, "target type")
    pairs = ranking_pairs(items, train, test, target_type)
    cand_rows, ev = pairs.cand_rows, pairs.users
    if ev.height == 0:
        check_test_items(test, items, "test")
        raise ContractError(f"test: no user has a new test interaction with a {target_type!r}")

    # user vectors of the evaluated users (zero for unknown ids)
    pos = user_rows(pairs, users)
    dim = user_vecs.shape[1]
    uv = np.zeros((ev.height, dim), np.float32)
    known = pos.is_not_null().to_numpy()
    uv[known] = user_vecs[pos.drop_nulls().to_numpy()]
    fallback = ~np.any(uv != 0, axis=1)  # missing or zero: no cold-user path
    iv = torch.from_numpy(np.ascontiguousarray(item_vecs[cand_rows], dtype=np.float32))

    popularity = pairs.popularity
    tier = _tiers(popularity)
    kk, nn = min(k, len(cand_rows)), min(n, len(cand_rows))
    te_u, te_c = pairs.relevant
    n_rel = np.bincount(te_u, minlength=ev.height)
    ranked = rank_items(
        torch.from_numpy(uv),
        iv,
        kk,
        pairs.relevant,
        nn,
        exclude=pairs.excluded,
        fallback=(torch.from_numpy(fallback), torch.from_numpy(popularity.astype(np.float32))),
        chunk=batch,
    )
    rank = ranked.ranks.numpy()
    by_user = hit_metrics(hits_of_ranks(rank, nn, te_u, ev.height), n_rel, kk)
    in_top = rank < kk  # per test pair: in its user's top k
    hits_tier = np.stack(
        [np.bincount(te_u, in_top & (tier[te_c] == t), ev.height) for t in range(len(TIERS))]
    )
    n_rel_tier = np.stack(
        [np.bincount(te_u, tier[te_c] == t, ev.height) for t in range(len(TIERS))]
    )
    topk, valid = ranked.items.numpy(), torch.isfinite(ranked.scores).numpy()

    warm = np.zeros(ev.height, bool)
    warm[pairs.excluded[0]] = True
    active = ev["user_id"].is_in(train["user_id"].unique().implode()).to_numpy()
    out: dict[str, Any] = {
        "target_type": target_type,
        "k": k,
        "n": n,
        "candidates": len(cand_rows),
        "fallback_users": int(fallback.sum()),
    }
    group = (by_user, topk, valid, len(cand_rows), k)
    out |= _group(np.ones(ev.height, bool), *group)
    out["warm"] = _group(warm, *group)
    out["cold"] = _group(active & ~warm, *group)
    out["no_history"] = _group(~active, *group)
    out["tiers"] = {}
    for t, (name, _) in enumerate(TIERS):
        has = n_rel_tier[t] > 0
        users_t = int(has.sum())
        out["tiers"][name] = {
            "items": int((tier == t).sum()),
            "users": users_t,
            f"hr@{k}": float((hits_tier[t][has] > 0).mean()) if users_t else None,
            f"recall@{k}": float((hits_tier[t][has] / n_rel_tier[t][has]).mean())
            if users_t
            else None,
        }
    # item slices, per test pair: is the pair's item in the user's top k?
    pair_pop = popularity[te_c]
    out["new_items"] = _pairs(in_top, te_c, pair_pop == 0, k)
    out["rare_items"] = _pairs(in_top, te_c, (pair_pop > 0) & (pair_pop < RARE), k)
    if per_user:
        groups = np.where(warm, "warm", np.where(active, "cold", "no_history"))
        out["per_user"] = {
            "user_id": ev["user_id"].to_list(),
            f"hr@{k}": by_user["hr"].astype(int).tolist(),
            "group": groups.tolist(),
        }
    return out


def _pairs(hit: np.ndarray, item: np.ndarray, mask: np.ndarray, k: int) -> dict[str, Any]:
    """Pair-level recall of the test pairs selected by ``mask``."""
    pairs = int(mask.sum())
    return {
        "pairs": pairs,
        "items": int(np.unique(item[mask]).size),
        f"recall@{k}": float(hit[mask].mean()) if pairs else None,
    }


def _group(
    mask: np.ndarray,
    per_user: dict[str, np.ndarray],
    topk: np.ndarray,
    valid: np.ndarray,
    n_cand: int,
    k: int,
) -> dict[str, Any]:
    """Metrics averaged over the evaluated users selected by ``mask``."""
    users = int(mask.sum())
    names = {"hr": f"hr@{k}", "recall": f"recall@{k}", "ndcg": f"ndcg@{k}", "rr": "mrr"}
    res: dict[str, Any] = {"users": users}
    for key, name in names.items():
        res[name] = float(per_user[key][mask].mean()) if users else None
    shown = np.unique(topk[mask][valid[mask]])
    res["coverage"] = len(shown) / n_cand if users else None
    return res


def _tiers(pop: np.ndarray) -> np.ndarray:
    """``[n_cand]`` tier index (0 head, 1 torso, 2 tail) of each candidate, from its
    popularity ``pop [n_cand]``."""
    n_cand = len(pop)
    order = np.lexsort((np.arange(n_cand), -pop))  # popularity desc, then item row
    tier = np.full(n_cand, len(TIERS) - 1)
    start = 0
    for t, (_, share) in enumerate(TIERS[:-1]):
        end = math.ceil(share * n_cand)
        tier[order[start:end]] = t
        start = end
    tier[pop == 0] = len(TIERS) - 1
    return tier
