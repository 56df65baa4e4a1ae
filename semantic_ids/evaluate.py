"""Recall@k of a stage-5 run on the test side of a split (``evaluate-generative``).

* A generative run (:mod:`.generate`): search, test queries grouped by query string, and
  rec, each test user's last training items → their new test items.
* A prefix run (:mod:`.prefix`), with and without the user:

  * ``personal_search``: per test ``(user, query)`` (:func:`~.examples.personal_eval_targets`)
    ``with_user`` (soft tokens + query) and ``without_user`` (the frozen model, query only);
  * ``rec``: per test user with training items, ``user_token`` (soft tokens + ``[REC]``)
    and ``history`` (the frozen model given the last ``history`` items), training items
    excluded from both; ``tokens`` per request of each.

``max_inputs`` evaluates a seeded sample of that many inputs per task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audiograph.core.formats import peek_kind
from audiograph.graphs.contract import Dataset, read_dataset
from audiograph.semantic_ids.examples import (
    rec_eval_targets,
    recall_at,
    sample_inputs,
    search_eval_targets,
    split_personal_targets,
    user_sequences,
)
from audiograph.semantic_ids.generate import GenerativeRun, load_run, recommend, search
from audiograph.semantic_ids.prefix import (
    PrefixRun,
    load_prefix,
    personal_search,
    recommend_for_users,
    request_tokens,
)


def evaluate_generative(
    run_dir: str | Path,
    test_dir: str | Path,
    ks: tuple[int, ...] = (10, 30),
    device: str = "cpu",
    max_inputs: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Recall@k of the generative or prefix run at ``run_dir`` on ``test_dir``: ``{task:
    {"recall@k": float, ...}, ...}`` as the module docstring says."""
    test = read_dataset(test_dir)
    if (peek_kind(run_dir) or {}).get("kind") == "prefix-run":
        return _prefix_recall(load_prefix(run_dir, device), test, ks, max_inputs)
    return _generative_recall(load_run(run_dir, device), test, ks, max_inputs, quiet)


def _generative_recall(
    run: GenerativeRun, test: Dataset, ks: tuple[int, ...], max_inputs: int | None, quiet: bool
) -> dict[str, Any]:
    tasks = run.config["train"]["tasks"]
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    k = max(ks)

    if "search" in tasks and test.queries is not None and test.queries.height:
        queries, rel = search_eval_targets(test.queries, run.codes["item_id"])
        pick = sample_inputs(rng, len(queries), max_inputs)
        ranked = search(run, [queries[i] for i in pick], k, desc=None if quiet else "search eval")
        out["search"] = {f"recall@{x}": recall_at(ranked, [rel[i] for i in pick], x) for x in ks}
        out["search"]["queries"] = len(pick)
    if "rec" in tasks and test.interactions is not None:
        train = read_dataset(run.config["data_dir"])
        seqs = user_sequences(train.interactions, run.codes["item_id"])
        users, hists, rel = rec_eval_targets(seqs, test.interactions, run.codes["item_id"])
        pick = sample_inputs(rng, len(users), max_inputs)
        ranked = recommend(run, [hists[i] for i in pick], k, desc=None if quiet else "rec eval")
        out["rec"] = {f"recall@{x}": recall_at(ranked, [rel[i] for i in pick], x) for x in ks}
        out["rec"]["users"] = len(pick)
    return out


def _prefix_recall(
    run: PrefixRun, test: Dataset, ks: tuple[int, ...], max_inputs: int | None
) -> dict[str, Any]:
    gen = run.gen
    train = read_dataset(gen.config["data_dir"])
    rng, k, out = np.random.default_rng(0), max(ks), {}

    def recall(ranked: list[list[int]], rel: list[set[int]]) -> dict[str, float]:
        return {f"recall@{x}": recall_at(ranked, rel, x) for x in ks}

    queries = train.queries
    if test.interactions is not None and queries is not None and queries.height:
        sid_items = gen.codes["item_id"]
        users, qs, rel, excl = split_personal_targets(train, test, sid_items)
        keep = [i for i, u in enumerate(users) if u in run.users]
        pick = [keep[i] for i in sample_inputs(rng, len(keep), max_inputs)]
        u, q = [users[i] for i in pick], [qs[i] for i in pick]
        r, x = [rel[i] for i in pick], [excl[i] for i in pick]
        out["personal_search"] = {
            f"{name}_user": recall(personal_search(run, u, q, k, x, with_user=flag), r)
            for name, flag in (("with", True), ("without", False))
        } | {"inputs": len(pick), "skipped_no_vector": len(users) - len(keep)}
    if test.interactions is not None and train.interactions is not None:
        seqs = user_sequences(train.interactions, gen.codes["item_id"])
        users, hists, rel = rec_eval_targets(seqs, test.interactions, gen.codes["item_id"])
        keep = [i for i, u in enumerate(users) if u in run.users]
        pick = [keep[i] for i in sample_inputs(rng, len(keep), max_inputs)]
        u, h, r = [users[i] for i in pick], [hists[i] for i in pick], [rel[i] for i in pick]
        seen = [set(x.tolist()) for x in h]
        out["rec"] = {
            "user_token": recall(recommend_for_users(run, u, k, seen), r),
            "history": recall(recommend(gen, h, k), r),
            "tokens": request_tokens(run, h),
            "users": len(pick),
            "skipped_no_vector": len(users) - len(keep),
        }
    return out
