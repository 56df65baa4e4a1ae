"""Recall@k of a stage-5 run on the test side of a split (``evaluate-generative``).

* A generative run (:mod:`.generate`): search, test queries grouped by query string, and
  rec, each test user's last training items → their new test items.
* A prefix run (:mod:`.prefix`), with and without the user:

  * ``personal_search``: per test ``(user, query)`` (:func:`~.examples.personal_eval_targets`)
    ``with_user`` (soft tokens + query) and ``without_user`` (the frozen model, query only);
  * ``rec``: per test user with training items, ``user_token`` (soft tokens + ``[REC]``)
    and ``history`` (the frozen model given the last ``history`` items), training items
    excluded from both; ``tokens`` per request of each.

``max_inputs`` evaluates a seeded sample of that many inputs per task. Only the tasks the
run was trained on are evaluated, and a task without test inputs is left out of the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audiograph.core.errors import ContractError, check_min
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
    is_prefix_run,
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
    {"recall@k": float, ...}, ...}`` as the module docstring says, for each task the run
    was trained on that has test inputs (``max_inputs``: at most that many per task, >= 1;
    None: all). No input at all is a one-line error that says why."""
    if max_inputs is not None:
        check_min("max-inputs", max_inputs, 1)
    test = read_dataset(test_dir)
    if is_prefix_run(run_dir):
        run = load_prefix(run_dir, device)
        out, skipped = _prefix_recall(run, test, ks, max_inputs)
        if not out and skipped:
            raise ContractError(
                f"{test_dir}: no test user has a vector in {run.config['users_dir']} (the "
                f"prefix run's user vectors; {skipped:,} inputs skipped): nothing to evaluate"
            )
        tasks, no_search = run.config["train"]["tasks"], "no test (user, query) with new items"
    else:
        gen = load_run(run_dir, device)
        out = _generative_recall(gen, test, ks, max_inputs, quiet)
        tasks, no_search = gen.config["train"]["tasks"], "no test query of an item with a SID"
    if not out:
        why = {"search": no_search, "rec": "no test user with new items since training"}
        raise ContractError(
            f"{test_dir}: no input to evaluate for the run's tasks ({', '.join(tasks)}): "
            + ", ".join(why[t] for t in tasks)
        )
    return out


def _generative_recall(
    run: GenerativeRun, test: Dataset, ks: tuple[int, ...], max_inputs: int | None, quiet: bool
) -> dict[str, Any]:
    """Per task with inputs: its recall and input count."""
    tasks = run.config["train"]["tasks"]
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    k = max(ks)

    if "search" in tasks and test.queries is not None and test.queries.height:
        queries, rel = search_eval_targets(test.queries, run.codes["item_id"])
        pick = sample_inputs(rng, len(queries), max_inputs)
        if len(pick):
            desc = None if quiet else "search eval"
            ranked = search(run, [queries[i] for i in pick], k, desc=desc)
            out["search"] = {
                f"recall@{x}": recall_at(ranked, [rel[i] for i in pick], x) for x in ks
            }
            out["search"]["queries"] = len(pick)
    if "rec" in tasks and test.interactions is not None:
        train = read_dataset(run.config["data_dir"])
        seqs = user_sequences(train.interactions, run.codes["item_id"])
        users, hists, rel = rec_eval_targets(seqs, test.interactions, run.codes["item_id"])
        pick = sample_inputs(rng, len(users), max_inputs)
        if len(pick):
            desc = None if quiet else "rec eval"
            ranked = recommend(run, [hists[i] for i in pick], k, desc=desc)
            out["rec"] = {f"recall@{x}": recall_at(ranked, [rel[i] for i in pick], x) for x in ks}
            out["rec"]["users"] = len(pick)
    return out


def _prefix_recall(
    run: PrefixRun, test: Dataset, ks: tuple[int, ...], max_inputs: int | None
) -> tuple[dict[str, Any], int]:
    """``(per task with inputs: its recalls and counts, inputs skipped in all because their
    user has no vector)``; only the tasks the prefix was trained on."""
    gen, tasks = run.gen, run.config["train"]["tasks"]
    train = read_dataset(gen.config["data_dir"])
    rng, k, out, skipped = np.random.default_rng(0), max(ks), {}, 0

    def recall(ranked: list[list[int]], rel: list[set[int]]) -> dict[str, float]:
        return {f"recall@{x}": recall_at(ranked, rel, x) for x in ks}

    queries = train.queries
    if (
        "search" in tasks
        and test.interactions is not None
        and queries is not None
        and queries.height
    ):
        sid_items = gen.codes["item_id"]
        users, qs, rel, excl = split_personal_targets(train, test, sid_items)
        keep = [i for i, u in enumerate(users) if u in run.users]
        skipped += len(users) - len(keep)
        pick = [keep[i] for i in sample_inputs(rng, len(keep), max_inputs)]
        u, q = [users[i] for i in pick], [qs[i] for i in pick]
        r, x = [rel[i] for i in pick], [excl[i] for i in pick]
        if pick:
            out["personal_search"] = {
                f"{name}_user": recall(personal_search(run, u, q, k, x, with_user=flag), r)
                for name, flag in (("with", True), ("without", False))
            } | {"inputs": len(pick), "skipped_no_vector": len(users) - len(keep)}
    if "rec" in tasks and test.interactions is not None and train.interactions is not None:
        seqs = user_sequences(train.interactions, gen.codes["item_id"])
        users, hists, rel = rec_eval_targets(seqs, test.interactions, gen.codes["item_id"])
        keep = [i for i, u in enumerate(users) if u in run.users]
        skipped += len(users) - len(keep)
        pick = [keep[i] for i in sample_inputs(rng, len(keep), max_inputs)]
        u, h, r = [users[i] for i in pick], [hists[i] for i in pick], [rel[i] for i in pick]
        seen = [set(x.tolist()) for x in h]
        if pick:
            out["rec"] = {
                "user_token": recall(recommend_for_users(run, u, k, seen), r),
                "history": recall(recommend(gen, h, k), r),
                "tokens": request_tokens(run, h),
                "users": len(pick),
                "skipped_no_vector": len(users) - len(keep),
            }
    return out, skipped
