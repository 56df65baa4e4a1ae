"""Every on-disk artifact kind, and the one check "is this a directory of kind K".

Each output directory marks itself with a JSON file (``manifest.json`` for data
outputs, ``config.json`` for training runs) holding ``writer: "audiograph"``, its
``kind`` and ``format_version``. Readers go through :func:`check_kind`, which gives a
one-line :class:`~audiograph.core.errors.ContractError` naming the directory, what was
expected and the command that creates it.

| kind | marker (.json) | written by | owner module: writer / reader |
|---|---|---|---|
| dataset | manifest¹ | prepare, split | graphs.contract: write_ / read_dataset |
| split | manifest | split | graphs.split: split_dataset (parts are datasets) |
| graph | manifest | build-graph | graphs.store: save_graph_tensors / load_graph |
| hgnn-run | config | train-hgnn | core.runs / hgnn.export: load_model |
| embeddings | manifest | export, embed-space | core.embeddings: write_ / read_embeddings |
| twotower-run | config | train-twotower | core.runs / twotower.serve: load_run |
| twotower-vectors | manifest | export-twotower | twotower.serve: export_vectors |
| user-vectors | manifest | embed-users | core.embeddings: write_ / read_user_vectors |
| semantic-ids | manifest | semantic-ids | semantic_ids.assign: load_semantic_ids |
| generative-run | config | train-generative | core.runs / semantic_ids.model_inputs |
| prefix-run | config | train-prefix | core.runs / semantic_ids.prefix: load_prefix |
| evaluation | manifest | run (evaluate) | pipeline.stages (report.json) |
| bi-encoder | manifest | embed-space | semantic_ids.spaces (a text-encoder folder) |

¹ A dataset is the user's own data: it needs no manifest (:mod:`audiograph.graphs.contract`
checks its tables instead); the adapters and ``split`` write one.
A directory without ``format_version`` predates versioning and reads as version 1; a
newer version than this code knows is refused with a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiograph.core.errors import ContractError

FORMAT_VERSION = 1
MANIFEST, CONFIG = "manifest.json", "config.json"
WRITER = "audiograph"  # the ``writer`` of every marker audiograph writes


@dataclass(frozen=True)
class Format:
    """One artifact kind: its marker file, required files, name and creating command."""

    kind: str
    name: str  # "a graph directory"
    command: str  # the CLI command that writes it
    marker: str = MANIFEST
    files: tuple[str, ...] = ()


# fmt: off
FORMATS: dict[str, Format] = {f.kind: f for f in (
    Format("dataset", "a dataset directory", "prepare"),
    Format("split", "a split directory", "split"),
    Format("graph", "a graph directory", "build-graph", files=("graph.safetensors",)),
    Format("hgnn-run", "an HGNN run directory", "train-hgnn", CONFIG),
    Format("embeddings", "an embeddings directory", "export",
           files=("embeddings.npy", "ids.parquet")),
    Format("twotower-run", "a two-tower run directory", "train-twotower", CONFIG),
    Format("twotower-vectors", "a two-tower vectors directory", "export-twotower"),
    Format("user-vectors", "a user vectors directory", "embed-users",
           files=("user_vectors.npy", "users.parquet")),
    Format("semantic-ids", "a Semantic IDs directory", "semantic-ids",
           files=("codes.parquet", "codebooks.npy")),
    Format("generative-run", "a generative run directory", "train-generative", CONFIG),
    Format("prefix-run", "a user-prefix run directory", "train-prefix", CONFIG),
    Format("evaluation", "an evaluation directory", "run", files=("report.json",)),
    Format("bi-encoder", "a fine-tuned encoder directory", "embed-space"),
)}
# fmt: on


def peek_kind(path: str | Path) -> dict[str, Any] | None:
    """The marker (manifest or run config) of ``path`` when audiograph wrote it (any
    kind), else None (no error)."""
    for name in (MANIFEST, CONFIG):
        f = Path(path) / name
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and isinstance(data.get("kind"), str)
            and (data.get("writer") == WRITER)
        ):
            return data
    return None


def check_kind(path: str | Path, kind: str) -> dict[str, Any]:
    """The marker of the ``kind`` directory ``path`` (its ``manifest.json`` or
    ``config.json``), after checking that it is one: it exists (a previous output left
    aside by a writer killed mid-replacement is restored first), its marker names
    ``kind``, its format version is known and its required files are there. Raises a
    one-line :class:`ContractError` otherwise."""
    fmt, path = FORMATS[kind], Path(path)
    create = f"create one with 'audiograph {fmt.command}'"
    if not path.exists():
        from audiograph.core.atomic import recover, resolved

        recover(resolved(path))  # a writer killed between its two renames: put it back
    if not path.is_dir():
        raise ContractError(f"{path}: no such directory (expected {fmt.name}; {create})")
    marker = path / fmt.marker
    if not marker.is_file():
        found = peek_kind(path)
        what = f"it holds a {found['kind']!r} output" if found else f"no {fmt.marker}"
        raise ContractError(f"{path}: not {fmt.name} ({what}); {create}")
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise ContractError(f"{marker}: unreadable ({type(exc).__name__}); {create}") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else None
        raise ContractError(f"{marker}: kind is {found!r}, expected {kind!r} ({fmt.name})")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ContractError(
            f"{marker}: format_version {version!r} is newer than this audiograph reads "
            f"({FORMAT_VERSION}); upgrade audiograph or rebuild it with "
            f"'audiograph {fmt.command}'"
        )
    for name in fmt.files:
        if not (path / name).exists():
            raise ContractError(
                f"{path}: {fmt.name} without {name}; rebuild it with 'audiograph {fmt.command}'"
            )
    return data


__all__ = ["CONFIG", "FORMATS", "FORMAT_VERSION", "MANIFEST", "Format", "check_kind", "peek_kind"]
