"""``audiograph`` commands of the generative stage: train, generate, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from audiograph.pipeline.app import Out, Quiet, app
from audiograph.pipeline.config import resume_base
from audiograph.pipeline.options import Settings, config_options
from audiograph.semantic_ids.config import GenerativeConfig

Run = Annotated[Path, typer.Argument(help="Generative run directory (train-generative).")]


@app.command("train-generative")
@config_options(GenerativeConfig, "generative")
def train_generative(
    data_dir: Annotated[Path, typer.Argument(help="Training dataset (e.g. SPLIT_DIR/train).")],
    settings: Settings,
    sids: Annotated[Path, typer.Option(help="Semantic IDs directory (semantic-ids).")] = ...,
    out: Out = ...,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUN_DIR.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train the joint generative search + recommendation model (T5 decoding SIDs)."""
    from audiograph.semantic_ids.generative import train_generative as run

    cfg = settings.build(resume_base(out, "generative-run") if resume else None)
    m = run(data_dir, sids, out, cfg, resume=resume, quiet=quiet)
    print(f"[train-generative] last epoch loss {m.get('train_loss', float('nan')):.4f} -> {out}")


@app.command("generate")
def generate(
    run_dir: Run,
    query: Annotated[str | None, typer.Option(help="Search query text.")] = None,
    user: Annotated[str | None, typer.Option(help="User id (recommendation).")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Number of items.")] = 10,
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
) -> None:
    """Top-k catalog items for a query (search) or a user's history (recommendation)."""
    from audiograph.core.errors import ContractError
    from audiograph.graphs.contract import read_items
    from audiograph.semantic_ids.generate import load_run, recommend, search, user_history

    if (query is None) == (user is None):
        raise ContractError("give exactly one of --query TEXT or --user USER_ID")
    if query is not None and not query.strip():
        raise ContractError("--query must not be empty")
    run = load_run(run_dir, device)
    task = "search" if query is not None else "rec"
    if task not in run.config["train"]["tasks"]:
        raise ContractError(f"{run_dir}: the run was not trained on the {task} task")
    if query is not None:
        rows = search(run, [query], k)[0]
    else:
        rows = recommend(run, [user_history(run, user)], k)[0]
    titles = read_items(run.config["data_dir"]).select("item_id", "title")
    picked = run.codes[rows].join(titles, on="item_id", how="left", maintain_order="left")
    for rank, r in enumerate(picked.iter_rows(named=True), 1):
        print(f"{rank:>3}  {r['sid']:<14}{r['item_type']:<12}{r['item_id']:<16}{r['title'] or ''}")


@app.command("evaluate-generative")
def evaluate_generative(
    run_dir: Run,
    test: Annotated[Path, typer.Option(help="Test dataset (SPLIT_DIR/test).")] = ...,
    max_inputs: Annotated[
        int | None, typer.Option(help="Evaluate a seeded sample of this many inputs per task.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Quiet = False,
) -> None:
    """Search and recommendation Recall@10/@30 of a generative run on a test split."""
    from audiograph.semantic_ids.generate import evaluate_generative as run

    report = run(run_dir, test, device=device, max_inputs=max_inputs, quiet=quiet or as_json)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for task, m in report.items():
        print(f"{task:<7} " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in m.items()))  # fmt: skip
