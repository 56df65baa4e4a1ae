"""Offline top-k protocol (audiograph.twotower.metrics), checked by hand and against brute force."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from audiograph.core.errors import ContractError
from audiograph.twotower.metrics import evaluate_vectors

# Candidates (books) in row order i0 i1 i3 i4 i5 with scores 1 5 4 3 2 for a user vector
# of +1; i2 is a music item and never a candidate.
ITEMS = pl.DataFrame(
    {
        "item_id": ["i0", "i1", "i2", "i3", "i4", "i5"],
        "item_type": ["book", "book", "music", "book", "book", "book"],
    }
)
ITEM_VECS = np.array([[1.0], [5.0], [100.0], [4.0], [3.0], [2.0]], np.float32)
USERS = pl.Series(["uA", "uB", "uC", "uD"])  # uE is missing
USER_VECS = np.array([[1.0], [1.0], [-1.0], [0.0]], np.float32)
TRAIN = pl.DataFrame(
    {"user_id": ["uA", "uB", "uC"], "item_id": ["i1", "i2", "i5"]}  # uB: music only (cold)
)
TEST = pl.DataFrame(
    {
        "user_id": ["uA", "uA", "uA", "uB", "uC", "uD", "uD", "uE", "uF"],
        "item_id": ["i4", "i5", "i1", "i1", "i1", "i5", "i2", "i3", "i2"],
    }
)
# Rankings (train items removed, k=2, n=4):
#   uA: i3 i4 i5 i0  rel {i4, i5} (i1 is a train item) -> hit at 2
#   uB: i1 i3 i4 i5  rel {i1}                           -> hit at 1
#   uC: i0 i4 i3 i1  rel {i1} (score -1 * v)            -> hit at 4 (outside top k)
#   uD: i1 i5 i0 i3  rel {i5} (zero vector: popularity) -> hit at 2
#   uE: i1 i5 i0 i4  rel {i3} (missing: popularity)     -> hit at 5 (outside n)
#   uF: only a music test item -> not evaluated
# (popularity = distinct training users: i1 and i5 one each, the others none; ties count
# against the relevant item: uE's i3 comes after i0 and i4, which score as little)
G2 = 1 / math.log2(3)


def _eval(**kw):
    args = dict(k=2, n=4) | kw
    return evaluate_vectors(USER_VECS, ITEM_VECS, USERS, ITEMS, TRAIN, TEST, "book", **args)


@pytest.mark.parametrize("batch", [1, 2, 1024])
def test_hand_computed_example(batch):
    r = _eval(batch=batch)
    assert (r["users"], r["fallback_users"], r["candidates"]) == (5, 2, 5)
    assert r["hr@2"] == pytest.approx(3 / 5)
    assert r["recall@2"] == pytest.approx((1 / 2 + 1 + 1) / 5)
    assert r["ndcg@2"] == pytest.approx((G2 / (1 + G2) + 1 + G2) / 5)
    assert r["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 4 + 1 / 2 + 0) / 5)
    # top-2 lists: {i3,i4} {i1,i3} {i0,i4} {i1,i5} {i1,i5} -> all 5 candidates
    assert r["coverage"] == pytest.approx(5 / 5)
    # warm = a training book: uA, uC; cold = training rows, no book: uB; no history: uD, uE
    assert r["warm"] == pytest.approx(
        {
            "users": 2,
            "hr@2": 1 / 2,
            "recall@2": 1 / 4,
            "ndcg@2": G2 / (1 + G2) / 2,
            "mrr": (1 / 2 + 1 / 4) / 2,
            "coverage": 3 / 5,
        }
    )
    assert r["cold"] == pytest.approx(
        {"users": 1, "hr@2": 1, "recall@2": 1, "ndcg@2": 1, "mrr": 1, "coverage": 2 / 5}
    )
    assert r["no_history"] == pytest.approx(
        {
            "users": 2,
            "hr@2": 1 / 2,
            "recall@2": 1 / 2,
            "ndcg@2": G2 / 2,
            "mrr": (1 / 2 + 0) / 2,
            "coverage": 2 / 5,
        }
    )
    # popularity: i1 and i5 have one training user; head = ceil(1% of 5) = 1 item (i1, the
    # lower row), torso = up to ceil(20% of 5) = 1 item -> empty, tail = the rest
    tiers = r["tiers"]
    assert tiers["head"] == pytest.approx(
        {"items": 1, "users": 2, "hr@2": 1 / 2, "recall@2": 1 / 2}
    )
    assert tiers["torso"] == {"items": 0, "users": 0, "hr@2": None, "recall@2": None}
    assert tiers["tail"] == pytest.approx(
        {"items": 4, "users": 3, "hr@2": 2 / 3, "recall@2": (1 / 2 + 1) / 3}
    )


def test_bad_inputs():
    with pytest.raises(ContractError, match="'podcast'"):
        evaluate_vectors(USER_VECS, ITEM_VECS, USERS, ITEMS, TRAIN, TEST, "podcast")
    with pytest.raises(ContractError, match="no user"):
        evaluate_vectors(USER_VECS, ITEM_VECS, USERS, ITEMS, TRAIN, TEST.head(0), "book")
    with pytest.raises(ValueError, match="match"):
        evaluate_vectors(USER_VECS[:2], ITEM_VECS, USERS, ITEMS, TRAIN, TEST, "book")
    with pytest.raises(ValueError, match="k <= n"):
        _eval(k=5, n=4)


def _brute_force(uv, iv, train, test, k, n):
    """Reference: per-user python loops over a full sort."""
    hr, rec, ndcg, rr, shown = [], [], [], [], set()
    for u in sorted(set(test)):
        s = iv @ uv[u]
        s[list(train.get(u, ()))] = -np.inf
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))
        rel = test[u] - train.get(u, set())
        if not rel:
            continue
        top = order[:k]
        shown |= set(top)
        h = [i in rel for i in top]
        hr.append(any(h))
        rec.append(sum(h) / len(rel))
        ideal = sum(1 / math.log2(j + 2) for j in range(min(len(rel), k)))
        ndcg.append(sum(1 / math.log2(j + 2) for j, x in enumerate(h) if x) / ideal)
        first = next((j for j, i in enumerate(order[:n]) if i in rel), None)
        rr.append(0.0 if first is None else 1 / (first + 1))
    return {
        "hr@5": np.mean(hr),
        "recall@5": np.mean(rec),
        "ndcg@5": np.mean(ndcg),
        "mrr": np.mean(rr),
        "coverage": len(shown) / iv.shape[0],
        "users": len(hr),
    }


def random_data(seed: int, n_users: int, n_items: int, dim: int, n_pairs: int) -> tuple:
    """Seeded random vectors and (user, item) pairs, 30 % of them test: ``(user vectors,
    item vectors, users, items, pairs frame, is_test, train sets, test sets)``."""
    rng = np.random.default_rng(seed)
    uv = rng.normal(size=(n_users, dim)).astype(np.float32)
    iv = rng.normal(size=(n_items, dim)).astype(np.float32)
    pairs = rng.integers(0, [n_users, n_items], size=(n_pairs, 2))
    is_test = rng.random(n_pairs) < 0.3
    frame = pl.DataFrame(
        {"user_id": [f"u{u}" for u in pairs[:, 0]], "item_id": [f"i{i}" for i in pairs[:, 1]]}
    )
    items = pl.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "item_type": "t"})
    users = pl.Series([f"u{u}" for u in range(n_users)])
    train_sets: dict[int, set[int]] = {}
    test_sets: dict[int, set[int]] = {}
    for (u, i), t in zip(pairs.tolist(), is_test, strict=True):
        (test_sets if t else train_sets).setdefault(u, set()).add(i)
    return uv, iv, users, items, frame, is_test, train_sets, test_sets


def test_matches_brute_force_on_random_data():
    uv, iv, users, items, frame, is_test, train_sets, test_sets = random_data(0, 40, 30, 8, 400)
    expected = _brute_force(uv, iv, train_sets, test_sets, k=5, n=12)
    got = evaluate_vectors(
        uv, iv, users, items, frame.filter(~is_test), frame.filter(is_test), "t", 5, 12, batch=7
    )
    assert {key: got[key] for key in expected} == pytest.approx(expected)


def test_item_slices_match_brute_force_on_random_data():
    # 80 items: sparse, some items have no or few training users
    uv, iv, users, items, frame, is_test, train_sets, test_sets = random_data(1, 40, 80, 4, 300)
    n_items = len(iv)
    got = evaluate_vectors(uv, iv, users, items, frame.filter(~is_test), frame.filter(is_test), "t")
    pop = np.zeros(n_items, int)
    for its in train_sets.values():
        pop[list(its)] += 1
    new, rare = [], []
    for u, rel in test_sets.items():
        s = iv @ uv[u]
        s[list(train_sets.get(u, ()))] = -np.inf
        top = sorted(range(n_items), key=lambda i: (-s[i], i))[:10]
        for i in rel - train_sets.get(u, set()):
            (new if pop[i] == 0 else rare if pop[i] < 3 else []).append(i in top)
    assert got["new_items"]["pairs"] == len(new) > 0
    assert got["new_items"]["recall@10"] == pytest.approx(np.mean(new))
    assert got["rare_items"]["pairs"] == len(rare) > 0
    assert got["rare_items"]["recall@10"] == pytest.approx(np.mean(rare))


def test_unknown_types_and_test_items_outside_the_catalog_are_named():
    with pytest.raises(ContractError, match=r"'nosuch': unknown item type \(known: .*book"):
        evaluate_vectors(USER_VECS, ITEM_VECS, USERS, ITEMS, TRAIN, TEST, "nosuch")
    foreign = TEST.with_columns(item_id=pl.lit("elsewhere-1"))
    with pytest.raises(ContractError, match="items is in the catalog .*'elsewhere-1'"):
        evaluate_vectors(USER_VECS, ITEM_VECS, USERS, ITEMS, TRAIN, foreign, "book")


def test_new_and_rare_item_slices_count_test_pairs_by_hand():
    # training users per book: i1 and i5 one each (rare), i0 i3 i4 none (new); top-2 lists
    # uA {i3,i4} uB {i1,i3} uC {i0,i4} uD {i1,i5} uE {i1,i5}
    r = _eval()
    # new: uA-i4 (in uA's top 2), uE-i3 (not)
    assert r["new_items"] == {"pairs": 2, "items": 2, "recall@2": 1 / 2}
    # rare: uA-i5 (no), uB-i1 (yes), uC-i1 (no), uD-i5 (yes); uA-i1 is a training pair
    assert r["rare_items"] == {"pairs": 4, "items": 2, "recall@2": 2 / 4}
    assert "per_user" not in r


def test_rare_items_have_one_or_two_training_users():
    items = pl.DataFrame({"item_id": ["b0", "b1", "b2", "b3"], "item_type": "book"})
    item_vecs = np.array([[4.0], [3.0], [2.0], [1.0]], np.float32)
    users = pl.Series(["u1", "u2", "u3", "u4"])
    user_vecs = np.ones((4, 1), np.float32)
    train = pl.DataFrame(
        {"user_id": ["u1", "u2", "u3", "u1", "u2"], "item_id": ["b0", "b0", "b0", "b1", "b1"]}
    )
    # b0: 3 training users (neither slice), b1: 2 (rare), b2 and b3: none (new)
    test = pl.DataFrame({"user_id": ["u4", "u3", "u4", "u4"], "item_id": ["b0", "b1", "b2", "b3"]})
    r = evaluate_vectors(user_vecs, item_vecs, users, items, train, test, "book", k=2, n=4)
    # top 2: u3 {b1, b2} (b0 is a training item), u4 {b0, b1}
    assert r["rare_items"] == {"pairs": 1, "items": 1, "recall@2": 1.0}
    assert r["new_items"] == {"pairs": 2, "items": 2, "recall@2": 0.0}


def test_slices_without_pairs_are_none():
    train = TRAIN.vstack(pl.DataFrame({"user_id": ["uX"] * 3, "item_id": ["i0", "i3", "i4"]}))
    r = evaluate_vectors(USER_VECS, ITEM_VECS, USERS, ITEMS, train, TEST, "book", k=2, n=4)
    assert r["new_items"] == {"pairs": 0, "items": 0, "recall@2": None}


def test_per_user_hit_rates_pair_models_user_by_user():
    r = _eval(per_user=True)
    # hits in the top 2: uA (at 2), uB (at 1), uD (at 2); uC and uE outside
    assert r["per_user"] == {
        "user_id": ["uA", "uB", "uC", "uD", "uE"],
        "hr@2": [1, 1, 0, 1, 0],
        "group": ["warm", "cold", "warm", "no_history", "no_history"],  # as in the breakdown
    }
    assert sum(r["per_user"]["hr@2"]) / 5 == pytest.approx(r["hr@2"])
    json.dumps(r)  # the report stays JSON-serialisable
