"""``audiograph`` commands of the Semantic ID stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from audiograph.pipeline.app import Out, Quiet, app


@app.command("semantic-ids")
def semantic_ids(
    emb_dir: Annotated[Path, typer.Argument(help="Embeddings directory (export).")],
    out: Out = ...,
    levels: Annotated[int, typer.Option(help="Residual k-means levels.")] = 2,
    codebook_size: Annotated[int, typer.Option(help="Codes per level.")] = 256,
    iters: Annotated[int, typer.Option(help="Lloyd iterations per level.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Quantize item embeddings into Semantic IDs (RQ-KMeans + a disambiguation code)."""
    from audiograph.semantic_ids import semantic_ids as run

    m = run(emb_dir, out, levels, codebook_size, iters, seed, device, quiet=quiet or as_json)
    if as_json:
        print(json.dumps(m, indent=2))
