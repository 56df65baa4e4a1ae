"""The one definition of the ranking metrics (core.metrics), on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiograph.core.metrics import hit_metrics, hits_of_lists, hits_of_ranks
from audiograph.core.ranking import positive_ranks


def test_hit_metrics_by_hand():
    hit = np.array(
        [
            [False, True, False, True],  # hits at ranks 2 and 4 of 3 relevant
            [False, False, False, False],  # none
            [True, False, False, False],
        ]
    )  # first place, 1 relevant
    m = hit_metrics(hit, np.array([3, 2, 1]), k=2)
    assert m["hr"].tolist() == [1.0, 0.0, 1.0]
    assert m["recall"].tolist() == pytest.approx([1 / 3, 0.0, 1.0])
    ideal = 1 + 1 / math.log2(3)  # two relevant items fit in the top 2
    assert m["ndcg"].tolist() == pytest.approx([(1 / math.log2(3)) / ideal, 0.0, 1.0])
    assert m["rr"].tolist() == pytest.approx([0.5, 0.0, 1.0])  # rr looks at the whole row


def test_no_relevant_items_score_zero_not_nan():
    m = hit_metrics(np.zeros((2, 3), bool), np.array([0, 0]), k=3)
    assert all(np.array_equal(v, np.zeros(2)) for v in m.values())


def test_lists_and_ranks_give_the_same_hit_matrices():
    hit = hits_of_lists([[5, 5, 7], [1, 2, 3]], [{5}, {3, 9}], k=3)
    assert hit.tolist() == [[True, False, False], [False, False, True]]  # a repeat counts once
    assert hits_of_ranks(np.array([0, 2, 9]), 3).tolist() == [
        [True, False, False],
        [False, False, True],
        [False, False, False],
    ]
    m = hit_metrics(hits_of_ranks(np.array([0, 2, 9]), 10), np.ones(3), 10)
    assert m["recall"].tolist() == [1.0, 1.0, 1.0] and m["rr"].tolist() == pytest.approx(
        [1.0, 1 / 3, 0.1]
    )


def test_nan_scores_rank_worst_never_perfect():
    nan = float("nan")
    pos = np.array([nan, 1.0, 1.0])
    neg = np.array([[nan, nan], [nan, 0.5], [2.0, nan]])
    rank = positive_ranks(pos, neg, np.ones((3, 2), bool))
    assert rank.tolist() == [3, 0, 1]  # a NaN positive: no hit; a NaN candidate: below it
    m = hit_metrics(hits_of_ranks(rank, 3), np.ones(3), 10)
    assert m["rr"].tolist() == [0.0, 1.0, 0.5]
    all_nan = positive_ranks(np.full(4, nan), np.full((4, 5), nan), np.ones((4, 5), bool))
    assert hit_metrics(hits_of_ranks(all_nan, 6), np.ones(4), 10)["rr"].mean() == 0.0
