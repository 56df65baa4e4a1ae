"""One tie rule everywhere (audiograph.core.ranking): lists break ties by index, every
evaluation counts them against the relevant item, so a model that scores everything the
same scores about 0 in every evaluation path; chunking never changes a result. Also: a
validation type (two-tower) or link type (HGNN) without validation labels is named."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from torch_geometric.data import HeteroData

from audiograph.core.ann import search
from audiograph.core.metrics import hit_metrics, hits_of_ranks
from audiograph.core.ranking import positive_ranks, rank_items, relevant_ranks, top_k
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.contract import read_dataset
from audiograph.graphs.split import split_dataset
from audiograph.hgnn.validate import split_edges
from audiograph.twotower import ranking as tt_ranking
from audiograph.twotower.baselines import popularity
from audiograph.twotower.config import TwoTowerConfig
from audiograph.twotower.lightgcn_tune import ValidationRecall
from audiograph.twotower.metrics import evaluate_vectors, ranking_pairs
from audiograph.twotower.training_data import prepare_windows, split_windows

N = 20  # items of the constant-score fixtures
ITEMS = pl.DataFrame({"item_id": [f"i{j:02d}" for j in range(N)], "item_type": "t"})
USERS = pl.Series([f"u{u}" for u in range(5)])
# every user trained on its own item 10 + u (excluded) and holds out item 0 + u: the lowest
# rows, where a tie broken by index would put them first
TRAIN = pl.DataFrame({"user_id": list(USERS), "item_id": [f"i{10 + u:02d}" for u in range(5)]})
TEST = pl.DataFrame({"user_id": list(USERS), "item_id": [f"i{u:02d}" for u in range(5)]})


def constant(rows: int, dim: int = 4) -> np.ndarray:
    return np.ones((rows, dim), np.float32)


# ------------------------------------------------------------------ constant scores


def test_constant_vectors_score_about_zero_in_the_test_metrics():
    r = evaluate_vectors(constant(5), constant(N), USERS, ITEMS, TRAIN, TEST, "t", k=10, n=N)
    # 19 candidates (the training item is excluded); the held-out one comes after the 18
    # others it ties with
    assert r["mrr"] == pytest.approx(1 / 19)
    assert (r["hr@10"], r["recall@10"], r["ndcg@10"]) == (0.0, 0.0, 0.0)
    assert r["new_items"]["recall@10"] == 0.0
    assert r["coverage"] == pytest.approx(10 / N)  # the list: the 10 lowest rows, shared


def test_constant_vectors_validate_as_about_zero():
    pairs = ranking_pairs(ITEMS, TRAIN, TEST, "t")
    assert ValidationRecall(pairs, USERS, k=10)(constant(5), constant(N)) == 0.0
    assert ValidationRecall(pairs, USERS, k=19)(constant(5), constant(N)) == 1.0  # all fit

    class ConstantTowers:
        def eval(self):
            return self

        def user(self, cat, dense):
            return torch.ones(len(cat), 4)

        item = user

    users, items = (torch.zeros(5, 1),) * 2, (torch.zeros(N, 1),) * 2
    labels = (torch.arange(5), torch.arange(5))
    seen = (torch.arange(5), torch.arange(5) + 10)
    args = (ConstantTowers(), users, items, labels, seen, None)
    assert tt_ranking.recall_at_k(*args, k=10) == 0.0
    assert tt_ranking.recall_at_k(*args, k=19) == 1.0


def test_constant_embeddings_validate_links_as_about_zero():
    c = 30
    rank = positive_ranks(np.ones(8), np.ones((8, c)), np.ones((8, c), bool))
    assert rank.tolist() == [c] * 8  # every candidate ties with the positive
    m = hit_metrics(hits_of_ranks(rank, c + 1), np.ones(8), 10)
    assert m["rr"].mean() == pytest.approx(1 / (c + 1)) and m["recall"].mean() == 0.0
    valid = np.ones((1, c), bool)
    valid[0, 5:] = False  # only the valid candidates count
    assert positive_ranks(np.ones(1), np.ones((1, c)), valid).tolist() == [5]


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_constant_embeddings_search_as_the_lowest_rows(chunk):
    # a search returns a list: ties by row, the same whatever the chunking; ranking a
    # held-out row against those scores still gives no hit
    scores, rows = search(constant(N), constant(2), 5, chunk=chunk)
    assert rows.tolist() == [[0, 1, 2, 3, 4]] * 2
    s = torch.from_numpy(constant(1) @ constant(N).T)
    assert relevant_ranks(s, torch.tensor([0]), torch.tensor([0]), 5).tolist() == [5]


# ------------------------------------------------------------------ ties at the cut


def test_lists_break_ties_by_index_and_ranks_count_them_against_the_relevant():
    s = torch.tensor([[3.0, 1.0, 2.0, 2.0, 2.0, 0.0], [float("nan"), 1.0, 1.0, 5.0, -1.0, 1.0]])
    values, items = top_k(s, 3)
    assert items.tolist() == [[0, 2, 3], [3, 1, 2]]
    assert values[1].tolist() == [5.0, 1.0, 1.0]
    # one relevant item: the number of others scoring at least as much
    assert relevant_ranks(s, torch.tensor([0]), torch.tensor([2]), 10).tolist() == [3]
    # two tied relevant items (2 and 3): after the tied 4, in index order; NaN: no rank
    rows, cols = torch.tensor([0, 0, 1, 1]), torch.tensor([3, 2, 0, 5])
    assert relevant_ranks(s, rows, cols, 10).tolist() == [3, 2, 10, 3]
    assert relevant_ranks(s, rows, cols, 3).tolist() == [3, 2, 3, 3]  # width caps


def test_the_test_metrics_at_a_tie_on_the_cut():
    items = ITEMS.head(5)
    iv = np.array([[3.0], [2.0], [2.0], [2.0], [1.0]], np.float32)
    train = pl.DataFrame({"user_id": ["other"], "item_id": ["i00"]})
    test = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["i01", "i04"]})
    users = pl.Series(["a", "b"])
    r = evaluate_vectors(np.ones((2, 1), np.float32), iv, users, items, train, test, "t", 2, 5)
    # a's i01 ties with i02 and i03 for places 2-4: place 4, no hit at 2; b's i04: place 5
    assert r["hr@2"] == 0.0 and r["mrr"] == pytest.approx((1 / 4 + 1 / 5) / 2)
    r = evaluate_vectors(np.ones((2, 1), np.float32), iv, users, items, train, test, "t", 4, 5)
    assert r["hr@4"] == pytest.approx(1 / 2)


def test_popularity_ties_only_equally_popular_items():
    items = ITEMS.head(5)
    # training users per item: i00 3, i01 2, i02 2, i03 1, i04 0
    train = pl.DataFrame(
        {
            "user_id": ["x", "y", "z", "x", "y", "x", "z", "y"],
            "item_id": ["i00", "i00", "i00", "i01", "i01", "i02", "i02", "i03"],
        }
    )
    test = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["i01", "i03"]})
    users = pl.Series(["a", "b", "x", "y", "z"])
    u, i = popularity(train, users, items, log=False)
    r = evaluate_vectors(u, i, users, items, train, test, "t", k=2, n=5)
    # a: i01 after i00 and its equal i02 (place 3); b: i03 after the three more popular
    assert r["mrr"] == pytest.approx((1 / 3 + 1 / 4) / 2) and r["hr@2"] == 0.0
    assert r["fallback_users"] == 0


# ------------------------------------------------------------------ chunking


def test_chunked_results_equal_unchunked_ones(device):
    rng = np.random.default_rng(0)
    uv = torch.from_numpy(rng.integers(-1, 2, (23, 3)).astype(np.float32))  # many ties
    iv = torch.from_numpy(rng.integers(-1, 2, (17, 3)).astype(np.float32))
    uv[4] = float("nan")
    pairs = np.unique(rng.integers(0, [23, 17], (60, 2)), axis=0)
    pairs = pairs[rng.permutation(len(pairs))]
    rel, seen = pairs[:40], pairs[40:]
    allowed = torch.from_numpy(rng.random(17) < 0.8)
    fallback = (torch.arange(23) % 5 == 0, torch.arange(17.0) % 3)

    def run(chunk: int):
        ranked = rank_items(
            uv.to(device), iv.to(device), 6, (rel[:, 0], rel[:, 1]), 8,
            exclude=(seen[:, 0], seen[:, 1]), allowed=allowed.to(device),
            fallback=tuple(t.to(device) for t in fallback), chunk=chunk,
        )  # fmt: skip
        return type(ranked)(*(t.cpu() for t in ranked))

    whole = run(1000)
    for chunk in (1, 4, 9):
        part = run(chunk)
        assert torch.equal(part.items, whole.items) and torch.equal(part.ranks, whole.ranks)
        assert torch.equal(part.scores, whole.scores)
    # the lists and ranks are those of a full sort by the documented keys
    for p, (u, c) in enumerate(rel):
        s = uv[u] @ iv.T
        if fallback[0][u]:
            s = fallback[1].clone()
        s = torch.where(allowed & ~s.isnan(), s, float("-inf"))
        s[seen[seen[:, 0] == u, 1]] = float("-inf")
        mine = set(rel[rel[:, 0] == u, 1].tolist())
        order = sorted(range(17), key=lambda j: (-s[j].item(), j in mine, j))
        want = order.index(c) if torch.isfinite(s[c]) else 8
        assert whole.ranks[p].item() == min(want, 8)
        assert whole.items[u].tolist() == sorted(range(17), key=lambda j: (-s[j].item(), j))[:6]
    _, items = tt_ranking.top_k(uv.to(device), iv.to(device), 6, allowed=allowed, chunk=5)
    assert torch.equal(items.cpu(), rank_items(uv, iv, 6, allowed=allowed).items)


@pytest.mark.parametrize("batch", [1, 3])
def test_evaluation_does_not_depend_on_the_batch(batch):
    rng = np.random.default_rng(1)
    uv = rng.integers(-1, 2, (5, 2)).astype(np.float32)
    iv = rng.integers(-1, 2, (N, 2)).astype(np.float32)
    r = evaluate_vectors(uv, iv, USERS, ITEMS, TRAIN, TEST, "t", 3, 10, batch=batch)
    assert r == evaluate_vectors(uv, iv, USERS, ITEMS, TRAIN, TEST, "t", 3, 10, batch=1024)
    pairs = ranking_pairs(ITEMS, TRAIN, TEST, "t")
    assert ValidationRecall(pairs, USERS, 3, batch=batch)(uv, iv) == pytest.approx(r["recall@3"])


def test_exact_search_with_ties_is_the_same_in_every_chunking():
    v = np.random.default_rng(2).integers(0, 3, (50, 2)).astype(np.float32)
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    ref = np.argsort(-(q @ v.T), axis=1, kind="stable")[:, :9]
    for chunk in (1, 6, 50):
        assert np.array_equal(search(v, q, 9, chunk=chunk)[1], ref)


# ------------------------------------------------------------------ no validation labels


def test_a_validation_type_without_labels_is_named(tmp_path):
    prepare_synthetic(tmp_path / "data", users=120, items={"music": 60, "audiobook": 20}, seed=3)
    split_dataset(tmp_path / "data", tmp_path / "split")
    windows = split_windows(tmp_path / "split" / "train")
    fit, labels = read_dataset(windows["fit"]), read_dataset(windows["labels"]).interactions
    books = fit.items.filter(pl.col("item_type") == "audiobook")["item_id"].implode()
    labels = labels.filter(~pl.col("item_id").is_in(books))  # no audiobook label left
    cfg = TwoTowerConfig(use_hgnn=False, val_type="audiobook", cache_dir=str(tmp_path / "c"))
    with pytest.warns(UserWarning, match="validation type 'audiobook': 0 user"):
        d = prepare_windows(fit, labels, None, cfg, quiet=True)
    assert len(d.val_labels[0]) > 0  # validated on the other labels, not 0.0 for nothing
    music = (fit.items["item_type"] == "music").to_numpy()
    assert d.val_allowed.cpu().numpy()[music].any()  # candidates of every type


def test_a_link_type_without_held_out_edges_is_named():
    data = HeteroData()
    data["a"].num_nodes, data["b"].num_nodes = 30, 30
    many = torch.stack([torch.arange(20), torch.arange(20) + 1])
    few = torch.stack([torch.arange(5), torch.arange(5)])
    data["a", "co", "a"].edge_index = torch.cat([many, many.flip(0)], 1)
    data["a", "co", "b"].edge_index = few
    data["b", "co", "a"].edge_index = few.flip(0)
    with pytest.warns(UserWarning, match="link type a__co__b: 5 edges hold out no"):
        _, val = split_edges(data, 0.2, 0)
    assert val["a", "co", "b"].shape[1] == 0 and val["a", "co", "a"].shape[1] == 4
