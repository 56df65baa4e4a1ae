"""The embeddings directory: the one writer and the one reader of its files.

Written by ``export`` (HGNN vectors), ``embed-space`` and ``fuse-spaces``; read by the
two-tower (item and history inputs), ``semantic-ids``, ``neighbors`` and the spaces.

* ``embeddings.npy`` — float32 ``[N, dim]``, L2-normalized rows;
* ``ids.parquet`` — ``item_id, item_type, row`` (row ``r`` of the matrix is that item);
* ``embeddings.parquet`` — optional, the same rows and the writer's extra id columns
  (e.g. ``in_graph``) with a ``vector`` column (one file for tools that want one table);
* ``index.faiss`` — a faiss IVF index from 100k rows on (:mod:`audiograph.core.ann`);
* ``manifest.json`` — ``kind="embeddings"``, ``format_version``, ``dim``, ``count``,
  ``per_type``, ``ann`` and what the writer adds (sources, model config, timings).

User vectors (one per user, e.g. the two-tower's user tower or the mean HGNN vector of
what the user consumed) have their own pair of files, written and read here too:
``user_vectors.npy`` (float32 ``[U, dim]``, L2-normalized) and ``users.parquet``
(``user_id``, ``vector``; row ``u`` is user ``u``), with a manifest of kind
``user-vectors`` (or ``twotower-vectors``: ``export-twotower`` writes the same two files
next to its item vectors).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.core.ann import build_index
from audiograph.core.atomic import write_json
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION, MANIFEST, check_kind, peek_kind

KIND = "embeddings"
NPY, IDS, PARQUET = "embeddings.npy", "ids.parquet", "embeddings.parquet"
USER_KINDS = ("user-vectors", "twotower-vectors")
USER_NPY, USERS = "user_vectors.npy", "users.parquet"


def write_embeddings(
    folder: Path,
    ids: pl.DataFrame,
    vectors: np.ndarray,
    manifest: dict[str, Any],
    index: str = "auto",
    with_table: bool = False,
    started: float | None = None,
) -> dict[str, Any]:
    """Write an embeddings directory's files into ``folder`` (the temporary directory of
    an :func:`~audiograph.core.atomic.atomic_dir`).

    Args:
        ids: ``item_id, item_type`` (+ extra columns for the table) of each row of
            ``vectors``, in order.
        vectors: float ``[len(ids), dim]``.
        manifest: the writer's fields; ``kind``, ``format_version``, ``dim``, ``count``,
            ``per_type``, ``ann`` (and ``seconds`` when ``started`` is given) are set here.
        index: ``auto`` | ``exact`` | ``ivf`` (:func:`~audiograph.core.ann.build_index`).
        with_table: also write ``embeddings.parquet``.

    Returns:
        the manifest as written.
    """
    mat = np.ascontiguousarray(vectors, dtype=np.float32)
    if mat.ndim != 2 or mat.shape[0] != ids.height:
        raise ValueError(f"vectors {mat.shape} do not match {ids.height} ids")
    np.save(folder / NPY, mat)
    table = ids.select("item_id", "item_type", row=pl.int_range(ids.height, dtype=pl.Int64))
    table.write_parquet(folder / IDS)
    if with_table:
        vec = pl.Series(mat, dtype=pl.Array(pl.Float32, int(mat.shape[1])))
        ids.drop("row", strict=False).with_columns(vector=vec).write_parquet(folder / PARQUET)
    per_type = dict(ids.group_by("item_type", maintain_order=True).len().iter_rows())
    out = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "dim": int(mat.shape[1]),
        "count": ids.height,
        "per_type": per_type,
        **manifest,
    }
    out["ann"] = build_index(mat, folder, index, seed=0)
    if started is not None:
        out["seconds"] = round(time.perf_counter() - started, 3)
    write_json(folder / MANIFEST, out)
    return out


def read_manifest(emb_dir: str | Path) -> dict[str, Any]:
    """The manifest of the embeddings directory ``emb_dir`` (one-line error if it is not
    one)."""
    return check_kind(emb_dir, KIND)


def read_embeddings(
    emb_dir: str | Path, mmap: bool = False
) -> tuple[pl.DataFrame, np.ndarray, dict[str, Any]]:
    """``(ids, vectors, manifest)`` of ``emb_dir``: ``ids`` = ``item_id, item_type, row``
    sorted by ``row``; ``vectors`` float32 ``[N, dim]`` (a read-only memmap with
    ``mmap``, then not checked for finite values). One-line errors for a directory that
    is not one, is incomplete or inconsistent."""
    emb_dir = Path(emb_dir)
    manifest = read_manifest(emb_dir)
    name = emb_dir / NPY
    try:
        ids = pl.read_parquet(emb_dir / IDS)
        vectors = np.load(name, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise ContractError(
            f"{emb_dir}: unreadable embeddings ({type(exc).__name__}); rebuild it with "
            "'audiograph export'"
        ) from None
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise ContractError(f"{name}: expected a non-empty [N, dim] matrix, got {vectors.shape}")
    if not {"item_id", "item_type", "row"} <= set(ids.columns):
        raise ContractError(f"{emb_dir / IDS}: needs columns item_id, item_type, row")
    ids = ids.sort("row")
    if ids.height != len(vectors) or not np.array_equal(
        ids["row"].to_numpy(), np.arange(len(vectors))
    ):
        raise ContractError(
            f"{emb_dir / IDS}: rows must be 0..{len(vectors) - 1}, one per row of {NPY} "
            f"({ids.height} ids for {len(vectors)} vectors)"
        )
    if mmap:
        return ids, vectors, manifest
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(1))[0])
        raise ContractError(
            f"{name}: non-finite values (row {bad}: item_id={ids['item_id'][bad]!r})"
        )
    return ids, vectors, manifest


def write_user_vectors(folder: Path, user_ids: pl.Series, vectors: np.ndarray) -> int:
    """Write ``user_vectors.npy`` and ``users.parquet`` of ``vectors`` float ``[U, dim]``
    (L2-normalized here; a zero row stays zero) into ``folder``; returns ``dim``. The
    caller writes the manifest (kind ``user-vectors`` or its own)."""
    mat = np.ascontiguousarray(vectors, dtype=np.float32)
    if mat.ndim != 2 or mat.shape[0] != len(user_ids):
        raise ValueError(f"vectors {mat.shape} do not match {len(user_ids)} users")
    norm = np.linalg.norm(mat, axis=1, keepdims=True)
    mat = mat / np.where(norm > 0, norm, 1.0)
    dim = int(mat.shape[1])
    np.save(folder / USER_NPY, mat)
    vec = pl.Series(mat, dtype=pl.Array(pl.Float32, dim))
    pl.DataFrame({"user_id": user_ids.cast(pl.Utf8), "vector": vec}).write_parquet(folder / USERS)
    return dim


def read_user_vectors(folder: str | Path) -> tuple[pl.Series, np.ndarray, dict[str, Any]]:
    """``(user_ids, vectors float32 [U, dim], manifest)`` of a user-vectors directory
    (``embed-users``) or an ``export-twotower`` output; one-line errors otherwise."""
    folder = Path(folder)
    found = (peek_kind(folder) or {}).get("kind")
    manifest = check_kind(folder, found if found in USER_KINDS else USER_KINDS[0])
    try:
        users = pl.read_parquet(folder / USERS, columns=["user_id"])["user_id"]
        vectors = np.load(folder / USER_NPY)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise ContractError(f"{folder}: unreadable user vectors ({type(exc).__name__})") from None
    if vectors.ndim != 2 or len(vectors) != len(users) or not np.isfinite(vectors).all():
        raise ContractError(
            f"{folder / USER_NPY}: expected finite [{len(users)}, dim] vectors, got {vectors.shape}"
        )
    return users, np.ascontiguousarray(vectors, dtype=np.float32), manifest


def align_embeddings(
    items: pl.DataFrame, emb_ids: pl.DataFrame, emb_mat: np.ndarray
) -> tuple[np.ndarray, int]:
    """``(vecs [I, d], missing)``: row ``i`` = the embedding of ``items[i]`` (zeros and
    counted in ``missing`` when ``emb_ids`` has no such ``item_id``)."""
    rows = items.select("item_id").join(
        emb_ids.select("item_id", "row"), on="item_id", how="left", maintain_order="left"
    )["row"]
    vecs = np.zeros((items.height, emb_mat.shape[1]), np.float32)
    have = rows.is_not_null().to_numpy()
    vecs[have] = emb_mat[rows.drop_nulls().to_numpy()]
    return vecs, int((~have).sum())


__all__ = [
    "IDS",
    "KIND",
    "NPY",
    "PARQUET",
    "USER_KINDS",
    "align_embeddings",
    "read_embeddings",
    "read_manifest",
    "read_user_vectors",
    "write_embeddings",
    "write_user_vectors",
]
