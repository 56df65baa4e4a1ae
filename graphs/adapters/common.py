"""Shared tail of every ``prepare`` adapter: validate, write atomically, summarize."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from audiograph.core.atomic import MANIFEST, atomic_dir, claim_output, write_json
from audiograph.core.formats import FORMAT_VERSION
from audiograph.graphs.contract import write_dataset

DATASET = "dataset"


def claim_dataset(out: str | Path, src: str | Path | None = None) -> None:
    """Refuse (before any work) an ``--out`` that a dataset may not be written to."""
    claim_output(out, DATASET, [src])


def save_dataset(
    out: str | Path,
    source: str,
    items: pl.DataFrame,
    interactions: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
    queries: pl.DataFrame | None = None,
    summary: dict[str, Any] | None = None,
    src: str | Path | None = None,
) -> dict[str, Any]:
    """Write a contract dataset into ``out`` atomically and return its manifest.

    The manifest (``manifest.json``) holds ``kind="dataset"``, the adapter name, row
    counts per table, items per type, and the adapter's own ``summary`` (e.g. rows it
    dropped and why).
    """
    manifest: dict[str, Any] = {
        "kind": DATASET,
        "format_version": FORMAT_VERSION,
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {
            "items": items.height,
            "interactions": 0 if interactions is None else interactions.height,
            "users": 0 if users is None else users.height,
            "queries": 0 if queries is None else queries.height,
        },
        "items_per_type": dict(items.group_by("item_type", maintain_order=True).len().iter_rows()),
        "summary": summary or {},
    }
    with atomic_dir(out, DATASET, [src]) as tmp:
        write_dataset(tmp, items, interactions, users, queries)
        write_json(tmp / MANIFEST, manifest)
    return manifest
