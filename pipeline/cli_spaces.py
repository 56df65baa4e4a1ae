"""``audiograph`` commands that build the embedding spaces of the Semantic ID stage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from audiograph.pipeline.app import Out, Quiet, app


@app.command("embed-space")
def embed_space(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (e.g. SPLIT_DIR/train).")],
    space: Annotated[str, typer.Option(help="content | search | multitask.")] = ...,
    out: Out = ...,
    encoder: Annotated[
        Path | None, typer.Option(help="Local base model folder (default: all-MiniLM-L6-v2).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs [1].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per batch [32].")] = None,
    max_pairs: Annotated[
        int | None, typer.Option(help="Cap on training pairs per task, seeded sample [1024].")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Token limit per text while fine-tuning [32].")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate [2e-5].")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Embed the items of a dataset in one space: content (text encoder), search (encoder
    fine-tuned on query-item pairs) or multitask (+ co-interacting item pairs). Fine-tuning
    defaults are those of audiograph.semantic_ids.finetune.FinetuneConfig (shown in brackets)."""
    from audiograph.semantic_ids.finetune import FinetuneConfig
    from audiograph.semantic_ids.spaces import build_space

    given = {
        "epochs": epochs, "batch_size": batch_size, "max_pairs": max_pairs,
        "max_length": max_length, "lr": lr,
    }  # fmt: skip
    cfg = FinetuneConfig(
        seed=seed, device=device, **{k: v for k, v in given.items() if v is not None}
    )
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
