"""Semantic IDs of an embeddings export: RQ-KMeans codes + a disambiguation code.

``SID_DIR`` (written atomically by :func:`semantic_ids`):

* ``codes.parquet`` — ``item_id``, ``item_type``, ``codes`` (list of int64: the ``levels``
  residual k-means codes, then the disambiguation code), ``sid`` (the codes joined by
  ``-``, e.g. ``"12-201-0"``); one row per item, in the order of the rows of
  ``embeddings.npy``; every ``sid`` is unique;
* ``codebooks.npy`` — float32 ``[levels, codebook_size, dim]`` (level ``l``'s centroids;
  decode with :func:`audiograph.semantic_ids.rqkmeans.decode_rq`);
* ``manifest.json`` — ``kind="semantic-ids"``, ``levels``, ``codebook_size``, ``dim``,
  ``count``, the fit settings, ``stats`` (:func:`audiograph.semantic_ids.rqkmeans.code_stats` plus
  the reconstruction ``mse`` / ``relative_error``), ``seconds`` and the source ``emb_dir``.

A catalog smaller than ``codebook_size`` is an error (no silent clamping: the codebook
size is part of the ID vocabulary a downstream model is built for).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from audiograph.core.atomic import atomic_dir, claim_output, write_manifest
from audiograph.core.config import configure
from audiograph.core.embeddings import read_embeddings
from audiograph.core.errors import ContractError, contract_error, short_reason
from audiograph.core.formats import check_kind
from audiograph.semantic_ids.config import SemanticIDConfig
from audiograph.semantic_ids.rqkmeans import (
    code_stats,
    disambiguate,
    encode_rq,
    fit_rq,
    reconstruction_mse,
)

CODES, CODEBOOKS = "codes.parquet", "codebooks.npy"


def semantic_ids(
    emb_dir: str | Path,
    out_dir: str | Path,
    cfg: SemanticIDConfig | None = None,
    *,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Tokenize every item of ``emb_dir`` (an ``audiograph export`` directory) into a
    Semantic ID and write ``out_dir`` (layout in the module docstring).

    Args:
        cfg: the :class:`SemanticIDConfig`; keyword ``options`` (e.g. ``levels=3``)
            override its fields.
        quiet: no progress bar and no summary line (stderr).

    Returns:
        the manifest.
    """
    cfg = configure(SemanticIDConfig, cfg, options, "semantic-ids")
    levels, codebook_size, iters, seed = cfg.levels, cfg.codebook_size, cfg.iters, cfg.seed
    device, sample_per_code = cfg.device, cfg.sample_per_code
    t0 = time.perf_counter()
    emb_dir = Path(emb_dir)
    claim_output(out_dir, "semantic-ids", [emb_dir])
    ids, vectors, _ = read_embeddings(emb_dir)
    n, dim = vectors.shape
    if codebook_size > n:
        raise ContractError(
            f"{emb_dir}: codebook size {codebook_size} is larger than the number of items"
            f" ({n}); choose a codebook size <= {n}"
        )
    t_fit = time.perf_counter()
    books = fit_rq(
        vectors, levels, codebook_size, iters, seed, device, sample_per_code, progress=not quiet
    )
    fit_s = time.perf_counter() - t_fit
    raw = encode_rq(vectors, books)
    codes = disambiguate(raw)
    stats = {
        **code_stats(raw, codebook_size),
        **reconstruction_mse(vectors, raw, books),
    }
    code_lists = pl.Series("codes", codes.numpy(), dtype=pl.List(pl.Int64))
    out = (
        ids.select("item_id", "item_type")
        .with_columns(code_lists)
        .with_columns(sid=pl.col("codes").cast(pl.List(pl.String)).list.join("-"))
    )
    manifest = {
        "kind": "semantic-ids",
        "format_version": 1,
        "method": "rq-kmeans",
        "levels": levels,
        "codebook_size": codebook_size,
        "dim": int(dim),
        "count": n,
        "id_length": levels + 1,
        "iters": iters,
        "seed": seed,
        "device": str(device),
        "sample_per_code": sample_per_code,
        "stats": stats,
        "emb_dir": str(emb_dir.absolute()),
        "fit_seconds": round(fit_s, 3),
    }
    with atomic_dir(out_dir, "semantic-ids", [emb_dir]) as tmp:
        out.write_parquet(tmp / CODES)
        np.save(tmp / CODEBOOKS, torch.stack([b.cpu() for b in books]).numpy())
        write_manifest(tmp, manifest, t0)
    if not quiet:
        print(
            f"[semantic-ids] {n:,} items → {levels}×{codebook_size} codes + 1:"
            f" unique before disambiguation {stats['unique_fraction']:.1%},"
            f" max extra code {stats['max_extra_code']},"
            f" relative error {stats['relative_error']:.3f}  {manifest['seconds']:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    return manifest


def load_semantic_ids(sid_dir: str | Path) -> tuple[pl.DataFrame, np.ndarray, dict[str, Any]]:
    """``(codes, codebooks, manifest)`` of a directory written by :func:`semantic_ids`:
    ``codes`` = ``item_id, item_type, codes, sid``; ``codebooks`` float32
    ``[levels, codebook_size, dim]``."""
    sid_dir = Path(sid_dir)
    manifest = check_kind(sid_dir, "semantic-ids")
    try:
        books = np.load(sid_dir / CODEBOOKS)
    except (OSError, ValueError) as exc:
        msg = f"not a readable .npy file ({short_reason(exc)})"
        raise contract_error(str(sid_dir / CODEBOOKS), None, msg) from None
    return read_codes(sid_dir / CODES), books, manifest


def read_codes(path: str | Path) -> pl.DataFrame:
    """The Semantic ID table ``path`` (a ``codes.parquet`` of :func:`semantic_ids`, or the
    copy a generative run keeps): ``item_id, item_type, codes, sid``, at least one row,
    every ``codes`` a list of the same number of non-negative ints, each unique. A file
    that is unreadable, empty or otherwise is a one-line error naming it (and the column)."""
    name = str(path)
    try:
        codes = pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        msg = f"not a readable parquet file ({short_reason(exc)}); rebuild it with semantic-ids"
        raise contract_error(name, None, msg) from None
    for col in ("item_id", "item_type", "codes", "sid"):
        if col not in codes.columns:
            raise contract_error(name, col, "missing (not a Semantic ID table)")
    if codes.height == 0:
        raise contract_error(name, None, "no rows (no item has a Semantic ID)")
    if (
        not isinstance(codes.schema["codes"], pl.List)
        or not codes.schema["codes"].inner.is_integer()
    ):
        raise contract_error(name, "codes", f"must be lists of ints, not {codes.schema['codes']}")
    lengths = codes["codes"].list.len()
    bad = codes.with_row_index("_row").filter(
        pl.col("codes").is_null()
        | (lengths != lengths.max())
        | pl.col("codes").list.eval(pl.element().is_null() | (pl.element() < 0)).list.any()
    )
    if bad.height:
        msg = f"each must be {lengths.max()} non-negative ints"
        row = bad.row(0, named=True)
        raise contract_error(
            name, "codes", msg, {k: row[k] for k in ("item_id", "codes")}, row["_row"]
        )
    dup = codes.filter(pl.col("codes").is_duplicated())
    if dup.height:
        row = dup.select("item_id", "codes").row(0, named=True)
        raise contract_error(name, "codes", "Semantic IDs must be unique", row)
    return codes
