"""Embedding spaces to tokenize into Semantic IDs (content, search-tuned, multi-task, fused).

Following "Semantic IDs for Joint Generative Search and Recommendation" (RecSys 2025),
each space is an ``EMB_DIR`` like ``audiograph export`` writes (read by
:func:`audiograph.core.embeddings.read_embeddings`, tokenized by ``audiograph semantic-ids``):

* ``embeddings.npy`` — float32 ``[N, dim]``, rows L2-normalized;
* ``ids.parquet`` — ``item_id``, ``item_type``, ``row`` (row of ``embeddings.npy``);
* ``manifest.json`` — ``kind="embeddings"``, ``space``, ``dim``, ``count``, ``per_type``,
  ``sources``, ``config``, ``seconds``, ``normalized``.

Spaces built from a dataset (:func:`build_space`; items without text are skipped):

* ``content`` — the text encoder's item vectors (shared text-vector cache);
* ``search`` — the bi-encoder fine-tuned on the dataset's (query, item text) pairs
  (:mod:`audiograph.semantic_ids.finetune`), then every item encoded with it;
* ``multitask`` — fine-tuned on the sum of the query loss and a loss over
  co-interacting (item text, item text) pairs (two items of one user).

Fine-tuned spaces keep their encoder in ``EMB_DIR/encoder/`` (reusable as ``--encoder``);
their item vectors bypass the text-vector cache. Fit them on the TRAIN side of
``audiograph split`` so held-out queries stay unseen. :func:`fuse_spaces` combines
existing ``EMB_DIR`` s (``concat`` or ``svd-sum``), aligned by ``item_id``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.core.atomic import atomic_dir, claim_output
from audiograph.core.config import configure
from audiograph.core.embeddings import align_embeddings, read_embeddings, write_embeddings
from audiograph.core.embeddings import read_manifest as _read_manifest
from audiograph.core.errors import ContractError
from audiograph.core.progress import step
from audiograph.core.text_encoder import (
    DEFAULT_CACHE,
    TextEncoder,
    default_encoder_path,
    featurize_texts,
    item_texts,
)
from audiograph.graphs.contract import read_dataset
from audiograph.semantic_ids.finetune import FinetuneConfig, Pairs, finetune_bi_encoder

SPACES = ("content", "search", "multitask")
FUSE_METHODS = ("concat", "svd-sum")
ENCODER = "encoder"
STAGE = "embed-space"
EMBEDDINGS = "embeddings"


def build_space(
    space: str,
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: FinetuneConfig | None = None,
    *,
    encoder: str | Path | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    quiet: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Embed every item with text of the dataset ``data_dir`` in ``space`` → ``out_dir``.

    Args:
        space: ``content`` | ``search`` | ``multitask`` (module docstring).
        data_dir: contract dataset; fine-tuned spaces need ``queries.parquet`` (and
            ``multitask`` ``interactions.parquet``): use ``SPLIT_DIR/train``.
        encoder: local base model folder (default: bundled all-MiniLM-L6-v2).
        cfg: fine-tuning settings (ignored by ``content``); keyword ``options`` (e.g.
            ``epochs=2``) override its fields.
        cache_dir: text-vector cache of the base encoder (``content`` only; ``None``: off).

    Returns:
        the manifest.
    """
    t0 = time.perf_counter()
    if space not in SPACES:
        raise ContractError(f"unknown space {space!r}; choose one of {', '.join(SPACES)}")
    cfg = configure(FinetuneConfig, cfg, options, "embed-space")
    data_dir = Path(data_dir)
    claim_output(out_dir, EMBEDDINGS, [data_dir, encoder])
    ds = read_dataset(data_dir)
    texts = item_texts(ds.items)
    has = np.array([bool(t.strip()) for t in texts])
    if not has.any():
        raise ContractError(f"{data_dir}: no item has text (title, description or tags)")
    items = ds.items.filter(pl.Series(has)).select("item_id", "item_type")
    kept = [t for t, h in zip(texts, has, strict=True) if h]
    base = Path(encoder) if encoder is not None else default_encoder_path()
    sources: dict[str, Any] = {"dataset": str(data_dir.absolute()), "encoder": str(base)}
    with atomic_dir(out_dir, EMBEDDINGS, [data_dir, encoder]) as tmp:
        if space == "content":
            enc = TextEncoder(base, device=cfg.device)
            with step(STAGE, "encode", quiet) as s:
                mat, _, sources["cache"] = featurize_texts(kept, enc, cache_dir, progress=not quiet)
                s["rows"] = len(kept)
            run_config: dict[str, Any] = {"max_length": enc.max_length, "device": cfg.device}
        else:
            text_of = dict(zip(items["item_id"].to_list(), kept, strict=True))
            qp = query_pairs(ds.queries, text_of, data_dir)
            ip = None
            if space == "multitask":
                pairs = co_interaction_pairs(
                    ds.interactions, cfg.item_pairs_per_user, cfg.seed, data_dir
                )
                ip = [
                    (text_of[a], text_of[b])
                    for a, b in pairs.iter_rows()
                    if a in text_of and b in text_of
                ]
            log = finetune_bi_encoder(qp, ip, tmp / ENCODER, base, cfg, quiet)
            sources["finetune"] = {k: v for k, v in log.items() if not k.endswith("_loss")}
            sources["finetune"]["loss_first_last"] = {
                k: [log[k][0], log[k][-1]] for k in ("query_loss", "item_loss") if log[k]
            }
            enc = TextEncoder(tmp / ENCODER, device=cfg.device)
            with step(STAGE, "encode", quiet) as s:
                mat = enc.encode(kept, progress=not quiet)  # no cache: model is new
                s["rows"] = len(kept)
            run_config = asdict(cfg)
        encoder_info = {
            "path": str(Path(out_dir).absolute() / ENCODER) if space != "content" else str(base),
            "max_length": enc.max_length,
        }
        manifest = _manifest(space, sources, run_config, data_dir)
        manifest["encoder"] = encoder_info
        manifest["skipped_no_text"] = int((~has).sum())
        manifest = write_embeddings(tmp, items, mat, manifest, started=t0)
    return manifest


def query_pairs(queries: pl.DataFrame | None, text_of: dict[str, str], data_dir: Path) -> Pairs:
    """``(query, item text)`` for every distinct query row whose item has text."""
    if queries is None or queries.height == 0:
        raise ContractError(
            f"{data_dir / 'queries.parquet'}: no queries; the search and multitask spaces are"
            " fine-tuned on (query, item_id) pairs (use SPLIT_DIR/train of a dataset with"
            " queries)"
        )
    rows = queries.select("query", "item_id").unique(maintain_order=True).iter_rows()
    pairs = [(q, text_of[i]) for q, i in rows if i in text_of and q.strip()]
    if len(pairs) < 2:
        raise ContractError(
            f"{data_dir / 'queries.parquet'}: fewer than 2 queries of items with text"
        )
    return pairs


def co_interaction_pairs(
    interactions: pl.DataFrame | None, per_user: int, seed: int, data_dir: Path
) -> pl.DataFrame:
    """Seeded random pairs of distinct items consumed (``weight > 0``) by one user.

    Each user with ``c >= 2`` items draws ``per_user`` ordered pairs uniformly; duplicates
    (as unordered pairs) are dropped. Returns ``item_a, item_b`` (str), ``P`` rows.
    """
    if interactions is None or interactions.height == 0:
        raise ContractError(
            f"{data_dir / 'interactions.parquet'}: no interactions; the multitask space needs"
            " co-interacting item pairs"
        )
    ui = (
        interactions.filter(pl.col("weight") > 0)
        .select("user_id", "item_id")
        .unique()
        .sort("user_id", "item_id")
    )
    counts = ui.group_by("user_id", maintain_order=True).len()["len"].to_numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ok = counts >= 2
    c, s = np.repeat(counts[ok], per_user), np.repeat(starts[ok], per_user)
    rng = np.random.default_rng(seed)
    i = (rng.random(len(c)) * c).astype(np.int64)
    j = (rng.random(len(c)) * (c - 1)).astype(np.int64)
    j += j >= i  # a second, different item
    item = ui["item_id"]
    out = pl.DataFrame({"item_a": item.gather(s + i), "item_b": item.gather(s + j)})
    key = pl.min_horizontal("item_a", "item_b") + "\x00" + pl.max_horizontal("item_a", "item_b")
    out = out.filter(key.is_first_distinct())
    if out.height < 2:
        raise ContractError(
            f"{data_dir / 'interactions.parquet'}: fewer than 2 co-interaction pairs"
            " (users with at least 2 items)"
        )
    return out


def fuse_spaces(
    emb_dirs: list[str | Path],
    out_dir: str | Path,
    method: str = "concat",
    dim: int | None = None,
) -> dict[str, Any]:
    """Fuse embedding directories into one space, rows of the first directory's items.

    ``concat``: L2-normalize each, concatenate (``dim = sum d_i``), L2-normalize.
    ``svd-sum``: project each onto its top-``dim`` right singular vectors (default: the
    smallest ``d_i``), L2-normalize each, sum, L2-normalize. Items of the first directory
    missing from another get zeros for that part (counted per source in the manifest).

    Returns:
        the manifest.
    """
    t0 = time.perf_counter()
    if method not in FUSE_METHODS:
        raise ContractError(f"unknown fuse method {method!r}; choose concat or svd-sum")
    if len(emb_dirs) < 2:
        n = len(emb_dirs)
        raise ContractError(f"fusing needs at least 2 embeddings directories, got {n}")
    claim_output(out_dir, EMBEDDINGS, emb_dirs)
    spaces = [(Path(d), *read_embeddings(Path(d))[:2]) for d in emb_dirs]
    for d, ids, _ in spaces:
        if ids["item_id"].is_duplicated().any():
            raise ContractError(f"{d / 'ids.parquet'}: item_id values must be unique")
    dims = [m.shape[1] for _, _, m in spaces]
    if method == "concat" and dim is not None:
        raise ContractError("--dim applies to svd-sum only (concat keeps every dimension)")
    k = min(dims) if dim is None else dim
    if not 1 <= k <= min(dims):
        raise ContractError(f"--dim must be in 1..{min(dims)} (smallest source dim), got {k}")
    first = spaces[0][1]
    parts, sources = [], []
    for d, ids, mat in spaces:
        x = normalize_rows(svd_project(mat, k) if method == "svd-sum" else mat)
        aligned, missing = align_embeddings(first, ids, x)
        parts.append(aligned)
        sources.append(
            {
                "path": str(d.absolute()),
                "space": _space_of(d),
                "dim": int(mat.shape[1]),
                "missing": missing,
            }
        )
    fused = np.concatenate(parts, axis=1) if method == "concat" else np.sum(parts, axis=0)
    fused = normalize_rows(fused)
    items = first.select("item_id", "item_type")
    svd_dim = k if method == "svd-sum" else None
    config = {"method": method, "dim": int(fused.shape[1]), "svd_dim": svd_dim}
    manifest = _manifest("fused", {"spaces": sources}, config, None)
    manifest["method"], manifest["missing"] = method, [s["missing"] for s in sources]
    manifest["dataset"] = _read_manifest(spaces[0][0]).get("dataset")
    with atomic_dir(out_dir, EMBEDDINGS, emb_dirs) as tmp:
        manifest = write_embeddings(tmp, items, fused, manifest, started=t0)
    return manifest


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """float32 ``[N, d]`` with unit-norm rows (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def svd_project(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` float ``[N, d]`` onto its top-``k`` right singular vectors → float32 ``[N, k]``.

    Eigenvectors of ``xᵀx`` (float64, deterministic); each sign is fixed so its largest
    absolute entry is positive. No centering (a truncated SVD).
    """
    x64 = np.asarray(x, dtype=np.float64)
    vals, vecs = np.linalg.eigh(x64.T @ x64)  # ascending
    v = vecs[:, np.argsort(-vals, kind="stable")[:k]]  # [d, k]
    sign = np.sign(v[np.abs(v).argmax(0), np.arange(k)])
    return (x64 @ (v * np.where(sign == 0, 1.0, sign))).astype(np.float32)


def _manifest(
    space: str, sources: dict[str, Any], config: dict[str, Any], data_dir: Path | None
) -> dict[str, Any]:
    return {
        "space": space,
        "normalized": True,
        "dataset": str(data_dir.absolute()) if data_dir else None,
        "sources": sources,
        "config": config,
    }


def _space_of(emb_dir: Path) -> str | None:
    """The ``space`` of a directory (``rec`` for an HGNN export)."""
    m = _read_manifest(emb_dir)
    return m.get("space", "rec" if "run_dir" in m else None)
