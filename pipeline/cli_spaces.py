"""``audiograph`` commands that build the embedding spaces of the Semantic ID stage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from audiograph.pipeline.app import Out, Quiet, app
from audiograph.pipeline.options import Settings, config_options
from audiograph.semantic_ids.config import FinetuneConfig


@app.command("embed-space")
@config_options(FinetuneConfig, "finetune")
def embed_space(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (e.g. SPLIT_DIR/train).")],
    settings: Settings,
    space: Annotated[str, typer.Option(help="content | search | multitask.")] = ...,
    out: Out = ...,
    encoder: Annotated[
        Path | None, typer.Option(help="Local base model folder (default: all-MiniLM-L6-v2).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Embed the items of a dataset in one space: content (text encoder), search (encoder
    fine-tuned on query-item pairs) or multitask (+ co-interacting item pairs); the other
    options are the fine-tuning settings."""
    from audiograph.semantic_ids.spaces import build_space

    cfg = settings.build()
    m = build_space(space, data_dir, out, encoder=encoder, config=cfg, quiet=quiet or as_json)
    if as_json:
        print(json.dumps(m, indent=2))
    elif not quiet:
        print(
            f"[embed-space {space}] {m['count']:,} items {m['per_type']}, dim {m['dim']},"
            f" skipped {m['skipped_no_text']} without text  {m['seconds']:.1f}s -> {out}",
            file=sys.stderr,
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
    from audiograph.semantic_ids.spaces import fuse_spaces as run

    m = run(emb_dirs, out, method, dim)
    if as_json:
        print(json.dumps(m, indent=2))
    elif not quiet:
        print(
            f"[fuse-spaces {method}] {m['count']:,} items, dim {m['dim']},"
            f" missing per source {m['missing']}  {m['seconds']:.1f}s -> {out}",
            file=sys.stderr,
        )
