"""``audiograph`` commands of stage 4: the two-tower model, its evaluation and serving."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from audiograph.core.errors import ContractError
from audiograph.pipeline.app import Out, Quiet, app, command
from audiograph.pipeline.options import Settings
from audiograph.twotower.config import EvaluationConfig, TwoTowerConfig

Run = Annotated[Path, typer.Argument(help="Two-tower run directory (train-twotower).")]


@command("train-twotower", TwoTowerConfig, resumes="twotower-run", distributed=True)
def train_twotower(
    data_dir: Annotated[Path, typer.Argument(help="Training dataset (e.g. SPLIT_DIR/train).")],
    settings: Settings,
    embeddings: Annotated[
        Path | None, typer.Option(help="HGNN embeddings directory (export).")
    ] = None,
    no_hgnn: Annotated[
        bool, typer.Option("--no-hgnn", help="Plain two-tower: no HGNN inputs.")
    ] = False,
) -> None:
    """Train the user-decoupled two-tower model (2T-HGNN) on DATA_DIR."""
    if no_hgnn and settings.flags.get("use_hgnn"):
        raise ContractError("--no-hgnn and --use-hgnn contradict each other: give one")
    cfg = settings.build(use_hgnn=False if no_hgnn else None)
    if cfg.use_hgnn and embeddings is None and not settings.resume:
        raise ContractError("--embeddings EMB_DIR is required (or --no-hgnn for plain 2T)")
    _train(data_dir, embeddings, cfg, settings)


@command("train-baseline", TwoTowerConfig, resumes="twotower-run", distributed=True)
def train_baseline(
    data_dir: Annotated[Path, typer.Argument(help="Training dataset (e.g. SPLIT_DIR/train).")],
    settings: Settings,
) -> None:
    """Train the plain two-tower on DATA_DIR: the two-tower's settings without HGNN inputs
    (train-twotower --no-hgnn; the runner's [baseline] stage)."""
    if settings.flags.get("use_hgnn"):
        raise ContractError("--use-hgnn: the baseline has no HGNN inputs (use train-twotower)")
    _train(data_dir, None, settings.build(use_hgnn=False), settings)


def _train(data_dir: Path, embeddings: Path | None, cfg: TwoTowerConfig, s: Settings) -> None:
    from audiograph.twotower import train

    m = train.train_twotower(
        data_dir, embeddings, s.out, cfg, resume=s.resume, quiet=s.quiet, distributed=s.distributed
    )
    if os.environ.get("RANK", "0") != "0":  # one summary line per launch (rank 0)
        return
    print(
        f"[train-twotower] best val recall@10 {m.get('best_val_recall@10', 0):.4f} "
        f"(epoch {m.get('best_epoch')}) -> {s.out}"
    )


@command("evaluate", EvaluationConfig, out=False)
def evaluate(
    run_dir: Run,
    settings: Settings,
    test: Annotated[Path, typer.Option(help="Test dataset (SPLIT_DIR/test).")] = ...,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Plain two-tower run (train-twotower --no-hgnn) scored as 2t."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """2T-HGNN and the baselines (popularity, llm-knn, hgnn, lightgcn, and 2t with
    --baseline) on the test set; writes nothing."""
    from audiograph.twotower.evaluate import evaluate_run, results_table

    report = evaluate_run(
        run_dir, test, settings.build(), baseline_dir=baseline, quiet=settings.quiet or as_json
    )
    print(json.dumps(report, indent=2) if as_json else results_table(report))


@app.command("recommend")
def recommend(
    run_dir: Run,
    user: Annotated[str | None, typer.Option(help="One user: print the top k with titles.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Every user: top k -> this parquet file.")
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("-k", min=1, help="Items per user \\[default: 10; 100 with --out]."),
    ] = None,
    item_type: Annotated[str | None, typer.Option("--type", help="Only this item type.")] = None,
    quiet: Quiet = False,
) -> None:
    """Top-k items (training items excluded) for one user (--user, printed with titles) or
    for every user (--out: a parquet file of user_id, rank, item_id, score)."""
    from audiograph.twotower import serve

    if (user is None) == (out is None):
        raise ContractError("give --user USER (one user, printed) or --out FILE (every user)")
    if user is not None:
        picks = serve.recommend(run_dir, user, k=k or 10, item_type=item_type)
        for row in picks.iter_rows(named=True):
            print(f"{row['score']:.4f}  {row['item_type']:<12}{row['item_id']:<24}{row['title']}")
        return
    m = serve.score_all_users(run_dir, out, k=k or 100, item_type=item_type, quiet=quiet)
    print(f"[recommend] {m} -> {out}")


# the earlier name of `recommend --out` (every user's top k), kept for existing scripts
app.command("score-users", hidden=True, help="recommend --out FILE: every user's top k.")(recommend)


@app.command("export-twotower")
def export_twotower(run_dir: Run, out: Out = ..., quiet: Quiet = False) -> None:
    """User and item vectors (parquet + npy) of a two-tower run."""
    from audiograph.twotower.serve import export_vectors

    m = export_vectors(run_dir, out, quiet=quiet)
    print(f"[export-twotower] {m.get('users', '?')} users, {m.get('items', '?')} items -> {out}")
