"""``audiograph`` commands of the Semantic ID stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from audiograph.pipeline.app import Out, Quiet, app
from audiograph.pipeline.options import Settings, config_options
from audiograph.semantic_ids.config import SemanticIDConfig


@app.command("semantic-ids")
@config_options(SemanticIDConfig, "semantic_ids")
def semantic_ids(
    emb_dir: Annotated[Path, typer.Argument(help="Embeddings directory (export).")],
    settings: Settings,
    out: Out = ...,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Quantize item embeddings into Semantic IDs (RQ-KMeans + a disambiguation code)."""
    from audiograph.semantic_ids.tokenize import semantic_ids as run

    m = run(emb_dir, out, settings.build(), quiet=quiet or as_json)
    if as_json:
        print(json.dumps(m, indent=2))
