"""benchmarks/generative_eval.py: the inputs every row answers, per-input recall, top-k
with exclusions and the popularity reference (small fixtures, exact values)."""

from __future__ import annotations

import polars as pl
import pytest

from audiograph.graphs.contract import write_dataset


@pytest.fixture(scope="module")
def ev(load_scripts):
    return load_scripts("generative_eval")[0]


@pytest.fixture
def split(tmp_path):
    """train: u1 {a, b}, u2 {b}, u3 {c}; test: u1 {a, d} (a seen: only d is new), u2 {b}
    (nothing new), u4 {a} (no training items); queries: 'x' -> {a, d}, 'y' -> {c}."""
    items = pl.DataFrame({"item_id": list("abcd"), "item_type": "t", "title": list("ABCD")})

    def side(rows, queries):
        inter = pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row").with_columns(
            signal=pl.lit("stream"), weight=pl.lit(1.0), ts=pl.lit(None, pl.Int64)
        )
        return inter, pl.DataFrame(queries, schema=["query", "item_id"], orient="row")

    for name, rows, q in (
        ("train", [("u1", "a"), ("u1", "b"), ("u2", "b"), ("u3", "c")], [("x", "b")]),
        (
            "test",
            [("u1", "a"), ("u1", "d"), ("u2", "b"), ("u4", "a")],
            [("x", "a"), ("x", "d"), ("y", "c")],
        ),
    ):
        (tmp_path / name).mkdir()
        inter, queries = side(rows, q)
        write_dataset(tmp_path / name, items, inter, queries=queries)
    return tmp_path


def test_inputs_are_the_test_queries_and_users_with_new_items(ev, split):
    got = ev.eval_inputs(split, max_inputs=10, seed=0)
    assert got["queries"] == ["x", "y"] and got["q_rel"] == [{"a", "d"}, {"c"}]
    assert got["q_seen"] == [{"b"}, set()]  # what training names is excluded from answers
    assert got["users"] == ["u1"] and got["u_rel"] == [{"d"}]
    assert sorted(got["history"][0]) == ["a", "b"]
    one = ev.eval_inputs(split, max_inputs=1, seed=0)
    assert len(one["queries"]) == 1 and one == ev.eval_inputs(split, max_inputs=1, seed=0)


def test_per_input_recall_and_top_k_exclusion(ev):
    assert ev.per_input([["a", "b"], ["c"]], [{"a", "d"}, {"x"}], 1) == [0.5, 0.0]
    s = ev.score([["a", "b"]], [{"b"}], ["q"])
    assert s["recall@10"] == 1.0 and s["per_input"] == {
        "key": ["q"],
        "recall@10": [1.0],
        "recall@30": [1.0],
    }
    import numpy as np

    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.0, 0.1, 0.2, 0.3]])
    top = ev._top(scores, list("abcd"), 2, [{"a"}, set()])
    assert top == [["b", "d"], ["d", "c"]]


def test_popularity_excludes_the_users_items(ev, split):
    # distinct training users per item: b 2, a 1, c 1 (ties by id), d 0
    assert ev.popularity_rec(split, ["u1", "u3"], [["a", "b"], ["c"]]) == [["c"], ["b", "a"]]


def test_bm25_ranks_items_by_their_text_and_excludes_the_seen(ev, tmp_path):
    """BM25 over the training items' text: the item whose text holds the query's words
    first, an item with none of them never; a query's seen items are left out."""
    items = pl.DataFrame(
        {
            "item_id": list("abcd"),
            "item_type": "t",
            "title": ["jazz piano trio", "rock band", "jazz vocals", ""],
        }
    )
    inter = pl.DataFrame(
        {"user_id": ["u"], "item_id": ["a"], "signal": ["stream"], "weight": [1.0]}
    ).with_columns(ts=pl.lit(None, pl.Int64))
    (tmp_path / "train").mkdir()
    write_dataset(tmp_path / "train", items, inter)
    got = ev.bm25_search(tmp_path, ["jazz piano", "rock", "jazz"], [set(), set(), {"a"}])
    assert got[0][:2] == ["a", "c"] and "b" not in got[0] and "d" not in got[0]
    assert got[1] == ["b"]
    assert got[2] == ["c"]


def test_named_slice_is_test_tags_the_item_already_has_in_train(ev):
    """Tags given in test to an item whose training text has the tag: ``rock`` on a (train
    has rock on a), not ``jazz`` on a (new to a) nor ``rock`` on b (train lacks it)."""
    from types import SimpleNamespace

    train = SimpleNamespace(
        queries=pl.DataFrame({"query": ["rock", "jazz", "pop"], "item_id": ["a", "c", "b"]})
    )
    test = SimpleNamespace(
        interactions=pl.DataFrame(
            {
                "user_id": ["u", "v", "w"],
                "item_id": ["a", "b", "c"],
                "tags": [["rock", "jazz"], ["rock"], ["jazz", None]],
            }
        )
    )
    assert ev.named_queries(train, test) == {"rock": {"a"}, "jazz": {"c"}}
    test.interactions = test.interactions.drop("tags")  # queries that are not user tags
    assert ev.named_queries(train, test) == {}


def test_training_log_keeps_every_epochs_rate_and_the_table_shows_the_drift(
    ev, load_scripts, tmp_path
):
    rows = [
        {"epoch": 0, "val_loss": 3.0, "examples_per_s": 1000.0, "seconds": 10.0},
        {"epoch": 1, "val_loss": 2.0, "examples_per_s": 900.0, "seconds": 11.0},
        {"epoch": 2, "val_loss": 2.5, "examples_per_s": 800.0, "seconds": 12.0},
        {"epoch": 3, "val_loss": 2.6, "examples_per_s": 700.0, "seconds": 13.0},
    ]
    pl.DataFrame(rows).write_ndjson(tmp_path / "metrics.jsonl")
    log = ev.training_log(tmp_path)
    assert log["epochs"] == 4 and log["best_epoch"] == 1 and log["seconds"] == 46.0
    assert log["per_epoch"] == [1000.0, 900.0, 800.0, 700.0]
    tables = load_scripts("speed_tables", "generative_tables")[1]
    doc = {"per_seed": [{"seed": 3, "rows": {"gen-a": {"training": log, "seconds": 120.0}}}]}
    # median of the last three (800) / median of the first three (900)
    assert tables._training_lines(doc) == [
        "- seed 3: generative stages 2 min for 1 space; examples/s first → last epoch "
        "(median last 3 ÷ first 3): a 1,000 → 700 (0.89)"
    ]


def test_frontier_lists_the_rows_better_on_both_tasks_beyond_the_interval(load_scripts):
    gen = load_scripts("seeded", "quality_stats", "quality", "generative_eval", "generative")[-1]
    keys = [f"k{i}" for i in range(40)]

    def row(search, rec):
        def task(x):
            return {"per_input": {"key": keys, "recall@10": x}}

        return {"search": task(search), "rec": task(rec)}

    low, high = [0.0] * 40, [1.0] * 40
    noisy = [0.1, -0.1] * 20  # mean 0: the paired interval straddles 0
    report = {
        "rows": {
            "gen-multitask": row(low, low),
            "gen-a": row(high, high),  # better on both
            "gen-b": row(high, low),  # better on search only
            "gen-c": row(noisy, high),  # rec better, search not beyond the interval
            "gen-fused": row(high, high),
        }
    }
    out = gen.frontier(report, 0)
    assert out == {"gen-multitask": ["gen-a", "gen-fused"], "gen-fused": []}
