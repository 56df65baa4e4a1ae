"""User and item vectors, recommendations and top-k lists from a trained two-tower run.

User inputs are recomputed from the user's FULL interactions in the dataset (default: the
run's ``data_dir``), not the history/label split of training; users listed only in
``users.parquet`` are cold (features only). Scores are cosines of the tower outputs (the
model's logit times its temperature), so they rank exactly as the model does.

``OUT_DIR`` of :func:`export_vectors` (written atomically): ``users.parquet`` (``user_id``,
``vector``), ``items.parquet`` (``item_id``, ``item_type``, ``vector``), ``user_vectors.npy``
and ``item_vectors.npy`` (float32, L2-normalized, rows in the parquet files' order) and
``manifest.json`` (``kind="twotower-vectors"``); from 100k items on, an item index
``index.faiss`` (see :mod:`audiograph.core.ann`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

from audiograph.core.ann import build_index
from audiograph.core.atomic import (
    atomic_dir,
    atomic_file,
    claim_file,
    claim_output,
    parquet_marker,
    write_manifest,
)
from audiograph.core.embeddings import write_user_vectors
from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMAT_VERSION
from audiograph.core.runs import WEIGHTS, load_state, load_weights, read_run_config
from audiograph.graphs.contract import INTERACTION_SCHEMA, Dataset, read_dataset
from audiograph.twotower.config import TwoTowerConfig
from audiograph.twotower.model import InputSpec, TwoTower, item_inputs, user_inputs
from audiograph.twotower.ranking import top_k
from audiograph.twotower.training_data import catalog_vectors, history_vectors

CHUNK = 65536
SCORES = "user-scores"
CORE = ["user_id", "item_id", "weight", "signal", "ts"]  # interaction columns used


@dataclass
class Run:
    """A loaded run with its dataset: the model (eval mode), its config, the catalog's
    item vectors ``[I, d]`` and the vectors user histories are averaged over."""

    model: TwoTower
    cfg: TwoTowerConfig
    spec: InputSpec
    ds: Dataset
    history_vectors: np.ndarray
    item_vecs: torch.Tensor

    @property
    def user_ids(self) -> pl.Series:
        """Every user: interactions (first-seen order), then users.parquet-only users."""
        seen = pl.Series("user_id", [], pl.Utf8)
        if self.ds.interactions is not None:
            seen = self.ds.interactions["user_id"].unique(maintain_order=True)
        if self.ds.users is not None:
            listed = self.ds.users["user_id"]
            seen = seen.append(listed.filter(~listed.is_in(seen.implode())))
        return seen


@torch.inference_mode()
def load_run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    emb_dir: str | Path | None = None,
) -> Run:
    """Load ``run_dir`` (``config.json`` + ``model.safetensors``) and embed every catalog
    item of ``data_dir`` (default: the run's) with the HGNN vectors of ``emb_dir``
    (default: the run's; e.g. the same HGNN re-exported on a larger graph at serving)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, "twotower-run")
    if not (run_dir / WEIGHTS).exists():
        raise ContractError(f"{run_dir}: the run has no {WEIGHTS} yet (train at least one epoch)")
    cfg = TwoTowerConfig(**{**config["train"], "device": device})
    spec = InputSpec(**config["spec"])
    model = TwoTower.of_config(spec, cfg)
    load_state(model, load_weights(run_dir / WEIGHTS), run_dir / WEIGHTS)
    model = model.to(device).eval()
    ds = read_dataset(data_dir or config["data_dir"])  # user histories
    # item inputs as in training: the fit window's popularity for a run trained on the
    # windows, else (a refit on all of train, a plain dataset) the training data's
    windows_only = config.get("windows") and not config.get("selection")
    fit = read_dataset(config["windows"]["fit"] if windows_only else config["data_dir"])
    text, hgnn = catalog_vectors(fit.items, emb_dir or config["emb_dir"], cfg, quiet=True)
    got = (text.shape[1], 0 if hgnn is None else hgnn.shape[1])
    if got != (spec.text_dim, spec.hgnn_dim):
        want = (spec.text_dim, spec.hgnn_dim)
        raise ContractError(
            f"{run_dir}: text/HGNN dims {got} differ from the run's {want}"
            " (another encoder or EMB_DIR?)"
        )
    cat, dense = item_inputs(fit.items, spec, text, hgnn, fit.interactions)
    vecs = [
        model.item(cat[i : i + CHUNK].to(device), dense[i : i + CHUNK].to(device))
        for i in range(0, len(cat), CHUNK)
    ]
    return Run(model, cfg, spec, ds, history_vectors(text, hgnn), torch.cat(vecs))


@torch.inference_mode()
def user_chunks(
    run: Run, user_ids: pl.Series, chunk: int = CHUNK
) -> Iterator[tuple[pl.Series, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]:
    """Per chunk of ``user_ids``: ``(ids, vectors [n, d], seen)``, with ``seen`` the
    ``(row in chunk, item index)`` pairs of the chunk's interactions (to exclude)."""
    inter = run.ds.interactions
    if inter is None:
        inter = pl.DataFrame(schema=INTERACTION_SCHEMA)
    item_idx = run.ds.items.select("item_id", _i=pl.int_range(pl.len(), dtype=pl.Int64))
    dev = run.item_vecs.device
    for lo in range(0, user_ids.len(), chunk):
        ids = user_ids.slice(lo, chunk)
        rows = pl.DataFrame({"user_id": ids, "_u": np.arange(ids.len(), dtype=np.int64)})
        part = inter.select(CORE).join(rows, on="user_id")  # no user column named _u
        cat, dense = user_inputs(
            ids, run.ds.users, part, run.ds.items, run.history_vectors, run.spec, run.cfg.weighted
        )
        seen = part.select("_u", "item_id").unique().join(item_idx, on="item_id")
        yield (
            ids,
            run.model.user(cat.to(dev), dense.to(dev)),
            (
                torch.from_numpy(seen["_u"].to_numpy(writable=True)),
                torch.from_numpy(seen["_i"].to_numpy(writable=True)),
            ),
        )


def user_item_vectors(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    emb_dir: str | Path | None = None,
) -> tuple[pl.Series, torch.Tensor, pl.DataFrame, torch.Tensor]:
    """``(users, user_vecs [U, d], items (item_id, item_type), item_vecs [I, d])`` (CPU,
    L2-normalized) for every user of interactions ∪ users.parquet and every catalog item
    (HGNN vectors of ``emb_dir``, default the run's)."""
    run = load_run(run_dir, data_dir, device, emb_dir)
    users = run.user_ids
    parts = [v.cpu() for _, v, _ in user_chunks(run, users)]
    dim = run.item_vecs.shape[1]
    user_vecs = torch.cat(parts) if parts else torch.zeros(0, dim)
    return users, user_vecs, run.ds.items.select("item_id", "item_type"), run.item_vecs.cpu()


def export_vectors(
    run_dir: str | Path,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    quiet: bool = False,
    index: str = "auto",
) -> dict[str, Any]:
    """Write every user's and item's vector into ``out_dir`` (layout in the module
    docstring) and an item index (``index``: auto | exact | ivf, see
    :func:`audiograph.core.ann.build_index`); returns the manifest."""
    t0 = time.perf_counter()
    claim_output(out_dir, "twotower-vectors", [run_dir, data_dir])
    users, uv, items, iv = user_item_vectors(run_dir, data_dir, device)
    u, i = uv.numpy().astype(np.float32), iv.numpy().astype(np.float32)
    dim = int(i.shape[1])
    manifest = {
        "kind": "twotower-vectors",
        "format_version": 1,
        "dim": dim,
        "users": users.len(),
        "items": items.height,
        "normalized": True,
        "run_dir": str(Path(run_dir).absolute()),
        "data_dir": str(
            Path(data_dir or read_run_config(run_dir, "twotower-run")["data_dir"]).absolute()
        ),
    }
    with atomic_dir(out_dir, "twotower-vectors", [run_dir, data_dir]) as tmp:
        write_user_vectors(tmp, users, u)  # the user-vectors files (core.embeddings)
        np.save(tmp / "item_vectors.npy", i)
        items.with_columns(vector=pl.Series(i, dtype=pl.Array(pl.Float32, dim))).write_parquet(
            tmp / "items.parquet"
        )
        manifest["ann"] = build_index(i, tmp, index, seed=0)  # item index for user queries
        write_manifest(tmp, manifest, t0)
    if not quiet:
        print(
            f"[twotower-export] {users.len():,} users, {items.height:,} items, dim {dim} "
            f"in {manifest['seconds']:.1f}s -> {out_dir}"
        )
    return manifest


def export_user_vectors(
    run_dir: str | Path,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Write every user's user-tower vector (users of ``data_dir``, default the run's) as
    a user-vectors directory (:mod:`audiograph.core.embeddings`); returns the manifest."""
    t0 = time.perf_counter()
    claim_output(out_dir, "user-vectors", [run_dir, data_dir])
    users, uv, _, _ = user_item_vectors(run_dir, data_dir, device)
    manifest = {
        "kind": "user-vectors",
        "format_version": FORMAT_VERSION,
        "source": "twotower",
        "run_dir": str(Path(run_dir).absolute()),
        "users": users.len(),
    }
    with atomic_dir(out_dir, "user-vectors", [run_dir, data_dir]) as tmp:
        manifest["dim"] = write_user_vectors(tmp, users, uv.numpy())
        write_manifest(tmp, manifest, t0)
    return manifest


def _allowed(run: Run, item_type: str | None) -> torch.Tensor | None:
    if item_type is None:
        return None
    types = run.ds.items["item_type"]
    if item_type not in types:
        known = types.unique().sort().to_list()
        raise ContractError(f"item_type {item_type!r} is not in the catalog (types: {known})")
    return torch.from_numpy((types == item_type).to_numpy(writable=True)).to(run.item_vecs.device)


def recommend(
    run_dir: str | Path,
    user_id: str,
    k: int = 10,
    item_type: str | None = None,
    data_dir: str | Path | None = None,
) -> pl.DataFrame:
    """Top-``k`` items for ``user_id`` → ``item_id, item_type, title, score`` (cosine, best
    first), excluding the items the user interacted with; only ``item_type`` if given."""
    if k < 1:
        raise ContractError(f"k must be >= 1, got {k}")
    run = load_run(run_dir, data_dir)
    users = run.user_ids
    if user_id not in users:
        raise ContractError(
            f"{run.ds.path}: user_id {user_id!r} is not in interactions or "
            f"users (example user_id={users[0]!r})"
        )
    _, uv, seen = next(user_chunks(run, pl.Series("user_id", [user_id])))
    scores, idx = top_k(uv, run.item_vecs, k, seen, _allowed(run, item_type))
    keep = torch.isfinite(scores[0])
    out = run.ds.items.select("item_id", "item_type", "title")[idx[0][keep].cpu().numpy()]
    return out.with_columns(score=pl.Series(scores[0][keep].cpu().numpy(), dtype=pl.Float32))


def score_all_users(
    run_dir: str | Path,
    out_path: str | Path,
    k: int = 100,
    item_type: str | None = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 4096,
    quiet: bool = False,
) -> dict[str, Any]:
    """Top-``k`` per user (seen items excluded) into the parquet ``out_path``: ``user_id,
    rank (1 = best), item_id, score``, scored and written ``batch_size`` users at a time
    (atomically: a temporary sibling renamed at the end). Returns counts."""
    if k < 1:
        raise ContractError(f"k must be >= 1, got {k}")
    claim_file(out_path, SCORES, [run_dir, data_dir])
    run = load_run(run_dir, data_dir, device)
    allowed, users = _allowed(run, item_type), run.user_ids
    item_ids, rows, writer = run.ds.items["item_id"], 0, None
    with atomic_file(out_path, SCORES, [run_dir, data_dir]) as tmp:
        try:
            with tqdm(total=users.len(), desc="score users", unit="user", disable=quiet) as bar:
                for ids, uv, seen in user_chunks(run, users, batch_size):
                    scores, idx = (t.cpu() for t in top_k(uv, run.item_vecs, k, seen, allowed))
                    ok = torch.isfinite(scores)
                    u, r = ok.nonzero(as_tuple=True)
                    table = pl.DataFrame(
                        {
                            "user_id": ids.gather(u.numpy()),
                            "rank": (r + 1).numpy().astype(np.int32),
                            "item_id": item_ids.gather(idx[ok].numpy()),
                            "score": scores[ok].numpy().astype(np.float32),
                        }
                    ).to_arrow()
                    table = table.replace_schema_metadata(parquet_marker(SCORES))
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                    rows += table.num_rows
                    bar.update(ids.len())
            if writer is None:
                cols = {"user_id": pl.Utf8, "rank": pl.Int32}
                empty = pl.DataFrame(schema={**cols, "item_id": pl.Utf8, "score": pl.Float32})
                marked = empty.to_arrow().replace_schema_metadata(parquet_marker(SCORES))
                pq.write_table(marked, tmp)
        finally:
            if writer is not None:
                writer.close()
    if not quiet:
        print(f"[twotower-score] {users.len():,} users, {rows:,} rows -> {out_path}")
    return {"users": users.len(), "rows": rows, "k": k, "item_type": item_type}
