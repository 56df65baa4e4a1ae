"""``audiograph`` commands of stage 5: embedding spaces, Semantic IDs, the generative model
and the user prefix (Embedding-to-Prefix)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from audiograph.core.errors import ContractError
from audiograph.pipeline.app import Out, Quiet, app, command
from audiograph.pipeline.options import Settings
from audiograph.semantic_ids.config import (
    FinetuneConfig,
    GenerativeConfig,
    PrefixConfig,
    SemanticIDConfig,
)

Run = Annotated[
    Path, typer.Argument(help="Generative run (train-generative) or prefix run (train-prefix).")
]


@command("embed-space", FinetuneConfig)
def embed_space(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (e.g. SPLIT_DIR/train).")],
    settings: Settings,
    space: Annotated[str, typer.Option(help="content | search | multitask.")] = ...,
    encoder: Annotated[
        Path | None, typer.Option(help="Local base model folder (default: all-MiniLM-L6-v2).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Embed the items of a dataset in one space: content (text encoder), search (encoder
    fine-tuned on query-item pairs) or multitask (+ co-interacting item pairs); the other
    options are the fine-tuning settings."""
    from audiograph.semantic_ids.spaces import build_space

    s = settings
    m = build_space(space, data_dir, s.out, s.build(), encoder=encoder, quiet=s.quiet or as_json)
    _report(
        m,
        as_json,
        s.quiet,
        f"[embed-space {space}] {m['count']:,} items {m['per_type']}, dim {m['dim']},"
        f" skipped {m['skipped_no_text']} without text  {m['seconds']:.1f}s -> {s.out}",
    )


@app.command("fuse-spaces")
def fuse_spaces(
    emb_dirs: Annotated[list[Path], typer.Argument(help="Two or more embeddings directories.")],
    out: Out = ...,
    method: Annotated[str, typer.Option(help="concat | svd-sum.")] = "concat",
    dim: Annotated[
        int | None, typer.Option(help="svd-sum: dimension (default: smallest source dim).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Fuse embedding spaces (rows of the first directory's items, aligned by item_id)."""
    from audiograph.semantic_ids import spaces

    m = spaces.fuse_spaces(emb_dirs, out, method, dim)
    line = f"[fuse-spaces {method}] {m['count']:,} items, dim {m['dim']}, missing per source"
    _report(m, as_json, quiet, f"{line} {m['missing']}  {m['seconds']:.1f}s -> {out}")


def _report(manifest: dict, as_json: bool, quiet: bool, line: str) -> None:
    """The manifest as JSON on stdout, or the summary ``line`` on stderr (unless quiet)."""
    if as_json:
        print(json.dumps(manifest, indent=2))
    elif not quiet:
        print(line, file=sys.stderr)


@command("semantic-ids", SemanticIDConfig)
def semantic_ids(
    emb_dir: Annotated[Path, typer.Argument(help="Embeddings directory (export).")],
    settings: Settings,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Quantize item embeddings into Semantic IDs (RQ-KMeans + a disambiguation code)."""
    from audiograph.semantic_ids import assign

    s = settings
    m = assign.semantic_ids(emb_dir, s.out, s.build(), quiet=s.quiet or as_json)
    _report(m, as_json, True, "")  # the summary line is semantic_ids' own


@command("train-generative", GenerativeConfig, resumes="generative-run")
def train_generative(
    data_dir: Annotated[Path, typer.Argument(help="Training dataset (e.g. SPLIT_DIR/train).")],
    settings: Settings,
    sids: Annotated[Path, typer.Option(help="Semantic IDs directory (semantic-ids).")] = ...,
) -> None:
    """Train the joint generative search + recommendation model (T5 decoding SIDs)."""
    from audiograph.semantic_ids import generative_train

    s = settings
    m = generative_train.train_generative(
        data_dir, sids, s.out, s.build(), resume=s.resume, quiet=s.quiet
    )
    _trained("train-generative", m, s.out)


@command("train-prefix", PrefixConfig, resumes="prefix-run")
def train_prefix(
    generative: Annotated[Path, typer.Argument(help="Generative run (train-generative).")],
    settings: Settings,
    users: Annotated[
        Path, typer.Option(help="User vectors (export-twotower or embed-users).")
    ] = ...,
) -> None:
    """Train a user prefix (one soft token from each user's vector) on a frozen generative
    model: personalised search and recommendation from the user token."""
    from audiograph.semantic_ids import prefix_train

    s = settings
    m = prefix_train.train_prefix(
        generative, users, s.out, s.build(), resume=s.resume, quiet=s.quiet
    )
    _trained("train-prefix", m, s.out)


def _trained(name: str, metrics: dict, out: Path) -> None:
    """The trainer's summary line: the last epoch's loss, or that a resumed run had no
    epoch left (``metrics["already_complete"]``)."""
    if metrics.get("already_complete"):
        n = metrics["epochs"]
        print(f"[{name}] {out} is already complete ({n} epoch{'s' * (n != 1)}): nothing to train")
    else:
        print(f"[{name}] last epoch loss {metrics['train_loss']:.4f} -> {out}")


@app.command("generate")
def generate(
    run_dir: Run,
    query: Annotated[str | None, typer.Option(help="Search query text.")] = None,
    user: Annotated[
        str | None,
        typer.Option(
            help="User id: recommendation, or with --query and a prefix run, personalised search."
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Number of items.")] = 10,
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
) -> None:
    """Top-k catalog items for a query (search), a user (recommendation: the user's
    history, or with a prefix run the user's token) or both (personalised search)."""
    from audiograph.graphs.contract import read_items
    from audiograph.semantic_ids.generate import (
        check_task,
        load_run,
        recommend,
        search,
        user_history,
    )
    from audiograph.semantic_ids.prefix import is_prefix_run

    if query is None and user is None:
        raise ContractError("give --query TEXT, --user USER_ID or both (with a prefix run)")
    if query is not None and not query.strip():
        raise ContractError("--query must not be empty")
    task = "search" if query is not None else "rec"
    if is_prefix_run(run_dir):
        from audiograph.semantic_ids.prefix import (
            load_prefix,
            personal_search,
            recommend_for_users,
        )

        prun = load_prefix(run_dir, device)
        run = prun.gen
        if user is None:  # the generative run's own search
            check_task(prun.config["generative_dir"], run.config, task)
            rows = search(run, [query], k)[0]
        else:
            prun.check_task(task)  # before the user's history is looked up
            if query is None:
                seen = set(user_history(run, user).tolist())
                rows = recommend_for_users(prun, [user], k, [seen])[0]
            else:
                rows = personal_search(prun, [user], [query], k)[0]
    else:
        if query is not None and user is not None:
            msg = "personalised search needs a prefix run (train-prefix)"
            raise ContractError(f"{run_dir}: a generative run answers --query or --user; {msg}")
        run = load_run(run_dir, device)
        check_task(run_dir, run.config, task)
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
    """Search and recommendation Recall@10/@30 of a generative run on a test split; of a
    prefix run: personalised search and recommendation with and without the user token."""
    from audiograph.semantic_ids.evaluate import evaluate_generative

    report = evaluate_generative(
        run_dir, test, device=device, max_inputs=max_inputs, quiet=quiet or as_json
    )
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for task, m in report.items():
        flat = {}
        for a, v in m.items():
            flat |= {f"{a}.{b}": x for b, x in v.items()} if isinstance(v, dict) else {a: v}
        print(
            f"{task:<7} "
            + "  ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in flat.items()
            )
        )
