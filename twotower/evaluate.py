"""``audiograph evaluate``: the 2T-HGNN run and every baseline in one offline harness.

All models are reduced to ``(user vectors, item vectors)`` scored by dot product and
evaluated by :func:`audiograph.twotower.metrics.evaluate_vectors` on the same test
interactions, with
each user's training items excluded:

* ``popularity`` — number of training users per item;
* ``llm-knn`` — user = mean text vector of the training history, item = its text vector;
* ``hgnn`` — the same with the HGNN embeddings of the run's ``EMB_DIR``;
* ``lightgcn`` — PyG ``LightGCN`` trained on the user–item training graph;
* ``graph-knn`` — the run's co-interaction graph (the one its HGNN was trained on) as an
  item-kNN, no learning (:mod:`~audiograph.twotower.graph_knn`; raw or degree-normalized
  weights, chosen on validation): the HGNN's floor;
* ``ease``, ``als``, ``itemknn`` — EASE, and :mod:`implicit`'s ALS and BM25 item-kNN where
  it is installed (:mod:`~audiograph.twotower.peers`), tuned on validation;
* ``2t`` — a plain two-tower run (``train-twotower --no-hgnn``) given as ``baseline_dir``
  (``evaluate --baseline``; the pipeline runner trains it as its ``baseline`` stage with
  the run's settings); without one it is left out and the report says so;
* ``2t-hgnn`` — the run itself.

Evaluation only evaluates: nothing is written. LightGCN is fitted in memory on the run's
training interactions (seeded); when those are the train part of a split with fit/label
windows its dim, negatives and epochs are first picked on validation (fit window vs label
window, :func:`~audiograph.twotower.lightgcn_tune.tune_lightgcn`), so the baseline is beaten
at its best; EASE, ALS and item-kNN choose their setting the same way, graph-kNN its
variant on the validation users; the test interactions are only read for scoring.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.core.atomic import read_json
from audiograph.core.config import configure
from audiograph.core.embeddings import align_embeddings, read_embeddings
from audiograph.core.errors import ContractError
from audiograph.core.runs import read_run_config
from audiograph.graphs.contract import read_dataset
from audiograph.twotower.baselines import history_knn, lightgcn, popularity
from audiograph.twotower.config import EvaluationConfig, LightGCNConfig, TwoTowerConfig
from audiograph.twotower.graph_knn import choose_graph_knn, graph_edges, graph_knn
from audiograph.twotower.lightgcn_tune import tune_lightgcn
from audiograph.twotower.metrics import check_item_type, check_test_items, evaluate_vectors
from audiograph.twotower.peers import HAS_IMPLICIT, PEERS, peer_vectors, tune_peer
from audiograph.twotower.serve import user_item_vectors
from audiograph.twotower.training_data import (
    catalog_vectors,
    split_windows,
    window_validation_users,
)

FIXED_PEERS = {"ease": {"lam": 500.0}, "als": {"factors": 64, "regularization": 0.1}}
FIXED_PEERS["itemknn"] = {"K": 100}
"""Each peer's setting where the training data has no windows to tune on."""


def _run_config(run_dir: Path) -> dict[str, Any]:
    return read_run_config(run_dir, "twotower-run")


def _baseline(baseline_dir: str | Path) -> Path:
    """``baseline_dir`` checked to be a plain (no HGNN inputs) two-tower run."""
    if _run_config(Path(baseline_dir))["train"].get("use_hgnn", True):
        raise ContractError(
            f"{baseline_dir}: the 2t baseline must be a plain two-tower run "
            "(train-twotower --no-hgnn), this one reads HGNN inputs"
        )
    return Path(baseline_dir)


def _lightgcn_settings(
    cfg: EvaluationConfig, data_dir: str | Path, target: str, seed: int
) -> tuple[LightGCNConfig, dict[str, Any]]:
    """``(LightGCN settings, the report's "lightgcn" entry)``: tuned on the windows of
    the split whose train part is ``data_dir`` (validation only), else the fixed
    ``lightgcn_epochs`` and the reason."""
    fixed = LightGCNConfig(epochs=cfg.lightgcn_epochs, seed=seed)
    windows = split_windows(data_dir) if cfg.lightgcn_tune else None
    why = "lightgcn_tune is off" if not cfg.lightgcn_tune else "no fit/label windows"
    if windows is not None:
        fit, labels = read_dataset(windows["fit"]), read_dataset(windows["labels"])
        try:
            tuned = tune_lightgcn(
                fit.interactions,
                labels.interactions,
                fit.items,
                target,
                fixed,
                dims=cfg.lightgcn_dims,
                negatives=cfg.lightgcn_negatives,
                max_epochs=cfg.lightgcn_max_epochs,
                patience=cfg.lightgcn_patience,
                k=cfg.k,
            )
            return tuned.chosen, tuned.report()
        except ContractError as exc:
            why = str(exc)
    settings = {
        "dim": fixed.dim,
        "negatives": fixed.negatives,
        "reg": fixed.reg,
        "epochs": fixed.epochs,
    }
    return fixed, {"tuned": False, "why": f"fixed settings: {why}", "chosen": settings}


def _graph_of(config: dict[str, Any]) -> Path | None:
    """The graph the run's HGNN embeddings were exported from (None without them)."""
    if config.get("emb_dir") is None:
        return None
    graph = read_json(Path(config["emb_dir"]) / "manifest.json").get("graph_dir")
    return None if graph is None else Path(graph)


def _graph_knn_variant(
    cfg: EvaluationConfig, edges: pl.DataFrame, data_dir: str | Path, items, target: str
) -> tuple[bool, dict[str, Any]]:
    """``(normalized, the report's "graph-knn" entry)``: ``cfg.graph_knn``, or with auto
    the variant chosen on the split's validation users (raw without them)."""
    if cfg.graph_knn != "auto":
        return cfg.graph_knn == "normalized", {"tuned": False, "chosen": cfg.graph_knn}
    windows = split_windows(data_dir)
    val_ids = None if windows is None else window_validation_users(windows)
    if val_ids is None:
        return False, {"tuned": False, "chosen": "raw", "why": "no validation users"}
    fit, labels = read_dataset(windows["fit"]), read_dataset(windows["labels"])
    choice = choose_graph_knn(
        edges, fit.interactions, labels.interactions, val_ids, items, target, cfg.k
    )
    return choice.normalized, choice.report()


def _peer_setting(
    name: str, cfg: EvaluationConfig, data_dir: str | Path, target: str, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(setting, the report's entry)`` of peer ``name``: tuned on the windows of the
    split whose train part is ``data_dir`` (validation only), else :data:`FIXED_PEERS`."""
    windows = split_windows(data_dir)
    if windows is None:
        fixed = FIXED_PEERS[name]
        return fixed, {"tuned": False, "why": "no fit/label windows", "chosen": fixed}
    fit, labels = read_dataset(windows["fit"]), read_dataset(windows["labels"])
    tuned = tune_peer(name, fit.interactions, labels.interactions, fit.items, target, cfg.k, seed)
    return tuned["chosen"], tuned


def evaluate_run(
    run_dir: str | Path,
    test_dir: str | Path,
    cfg: EvaluationConfig | None = None,
    *,
    emb_dir: str | Path | None = None,
    baseline_dir: str | Path | None = None,
    graph_dir: str | Path | None = None,
    quiet: bool = False,
    per_user: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate the two-tower run ``run_dir`` and the baselines on ``test_dir``.

    Args:
        run_dir: a ``train-twotower`` run (its ``data_dir`` is the training data).
        test_dir: a dataset whose interactions are the held-out test interactions.
        cfg: the :class:`EvaluationConfig`; keyword ``options`` (e.g. ``k=20``) override it.
        emb_dir: HGNN vectors for ``hgnn`` and ``2t-hgnn`` (default: the run's), e.g. the
            run's HGNN re-exported on a graph of all of train.
        baseline_dir: the plain two-tower run scored as ``2t`` (None: ``2t`` is skipped
            and listed in the report's ``skipped``).
        graph_dir: the graph ``graph-knn`` scores (default: the one the run's HGNN
            embeddings were exported from; none: ``graph-knn`` is skipped).
        per_user: add each model's per-user ``hr@k`` (``"per_user"``, see
            :func:`evaluate_vectors`) to pair models user by user; off keeps reports small.

    Returns:
        ``{"target_type", "results": {model: metrics}, "skipped": {model: why},
        "seconds": {model: s}, ...}``, with LightGCN ``"lightgcn": {"tuned", "chosen":
        {dim, negatives, reg, epochs}, ...}`` (tuned: ``"validation"`` holds the recall@k
        after every epoch per tried setting; else ``"why"``);
        each metrics dict has ``hr@k``, ``recall@k``, ``ndcg@k``, ``mrr``, ``coverage``,
        ``users``, the ``warm``/``cold``/``tiers`` breakdowns and the ``new_items`` /
        ``rare_items`` slices.
    """
    cfg_eval = configure(EvaluationConfig, cfg, options, "evaluate")
    target_type, models, k = cfg_eval.target_type, cfg_eval.models, cfg_eval.k
    run_dir = Path(run_dir)
    config = _run_config(run_dir)
    train_ds = read_dataset(config["data_dir"])
    test = read_dataset(test_dir, drop_unknown=True).interactions
    if train_ds.interactions is None or test is None or test.height == 0:
        raise ContractError(f"{test_dir}: no test interactions to evaluate")
    train, items = train_ds.interactions, train_ds.items
    check_test_items(test, items, str(test_dir))
    target = target_type or config["train"].get("target_type") or _rarest(train, items)
    check_item_type(items, target, "--target-type" if target_type else "target type")
    users = pl.concat([train["user_id"], test["user_id"]]).unique(maintain_order=True)
    cfg = TwoTowerConfig(**config["train"])
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    extra: dict[str, Any] = {}  # "lightgcn": its chosen settings and validation curves

    def score(name: str, u_ids: pl.Series, u: np.ndarray, i: np.ndarray, its=items) -> None:
        results[name] = evaluate_vectors(
            u, i, u_ids, its, train, test, target, k=k, per_user=per_user
        )
        if not quiet:
            r = results[name]
            print(
                f"[evaluate] {name:<11} hr@{k} {r[f'hr@{k}']:.4f}  ndcg@{k} "
                f"{r[f'ndcg@{k}']:.4f}  mrr {r['mrr']:.4f}  ({seconds[name]:.1f}s)"
            )

    for name in models:
        t0 = time.perf_counter()
        if name == "popularity":
            u, i = popularity(train, users, items, log=False)  # counts: ties only if equal
            u_ids = users
        elif name == "llm-knn":
            text_only = dataclasses.replace(cfg, use_hgnn=False)
            text = catalog_vectors(items, None, text_only, quiet=quiet)[0]
            (u, i), u_ids = history_knn(train, users, items, text, cfg.weighted), users
        elif name == "hgnn":
            if config.get("emb_dir") is None:
                continue
            ids, mat, _ = read_embeddings(emb_dir or config["emb_dir"])
            vecs, missing = align_embeddings(items, ids, mat)
            if missing:
                warnings.warn(
                    f"{missing} of {items.height} items have no HGNN embedding (zero vectors)",
                    stacklevel=2,
                )
            (u, i), u_ids = history_knn(train, users, items, vecs, cfg.weighted), users
        elif name == "lightgcn":
            lg_cfg, extra["lightgcn"] = _lightgcn_settings(
                cfg_eval, config["data_dir"], target, cfg.seed
            )
            u, i = lightgcn(train, users, items, lg_cfg)  # tuned: refit on all of train
            u_ids = users
        elif name == "graph-knn":
            graph = graph_dir or _graph_of(config)
            if graph is None:
                skipped[name] = "no graph: the run reads no HGNN embeddings (pass graph_dir)"
                continue
            edges = graph_edges(graph, items)
            normalized, extra[name] = _graph_knn_variant(
                cfg_eval, edges, config["data_dir"], items, target
            )
            (u, i), u_ids = graph_knn(edges, train, users, items, target, normalized), users
        elif name in PEERS:
            if name != "ease" and not HAS_IMPLICIT:
                skipped[name] = "implicit is not installed (pip install 'audiograph[bench]')"
                continue
            setting, extra[name] = _peer_setting(
                name, cfg_eval, config["data_dir"], target, cfg.seed
            )
            ((u, i),) = peer_vectors(name, train, users, items, target, [setting], cfg.seed)
            u_ids = users
        else:
            if name == "2t" and baseline_dir is None:
                skipped["2t"] = "no plain two-tower run given (baseline_dir / --baseline)"
                continue
            src = run_dir if name == "2t-hgnn" else _baseline(baseline_dir)
            u_ids, ut, its, it = user_item_vectors(src, emb_dir=emb_dir if src == run_dir else None)
            seconds[name] = time.perf_counter() - t0
            score(name, u_ids, ut.numpy(), it.numpy(), its)
            continue
        seconds[name] = time.perf_counter() - t0
        score(name, u_ids, u, i)
    return {
        "target_type": target,
        "k": k,
        "run_dir": str(run_dir.absolute()),
        "test_dir": str(Path(test_dir).absolute()),
        "results": results,
        "skipped": skipped,
        "baseline_dir": None if baseline_dir is None else str(Path(baseline_dir).absolute()),
        "seconds": {m: round(s, 2) for m, s in seconds.items()},
        **extra,
    }


def _rarest(train: pl.DataFrame, items: pl.DataFrame) -> str:
    """The item type with the fewest training interactions (the sparse type)."""
    counts = (
        train.join(items.select("item_id", "item_type"), on="item_id").group_by("item_type").len()
    )
    return counts.sort(["len", "item_type"])["item_type"][0]


def results_table(report: dict[str, Any], k: int = 10) -> str:
    """A markdown table of the main metrics per model (for the CLI and the benchmarks);
    user groups show their users and item slices their test pairs in parentheses (``–``
    where a report predates a key)."""
    cols = [f"hr@{k}", f"recall@{k}", f"ndcg@{k}", "mrr", "coverage"]
    lines = [
        f"target type: {report['target_type']}",
        "| model | " + " | ".join(cols) + " | warm hr | cold hr | no-history hr "
        f"| new-item recall@{k} | rare-item recall@{k} |",
        "|---" * (len(cols) + 6) + "|",
    ]
    groups = ("warm", "cold", "no_history")
    for name, r in report["results"].items():
        vals = [_num(r[c]) for c in cols] + [
            f"{_num(r.get(g, {}).get(f'hr@{k}'))} ({r.get(g, {}).get('users', 0)})" for g in groups
        ]
        for s in ("new_items", "rare_items"):
            sl = r.get(s) or {}
            vals.append(f"{_num(sl.get(f'recall@{k}'))} ({sl.get('pairs', '–')})")
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    lines += [f"({name} not scored: {why})" for name, why in report.get("skipped", {}).items()]
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"
