"""The hidden truth of a prepared synthetic dataset read back as vectors (see
:mod:`audiograph.graphs.adapters.synthetic`): a ceiling for benchmark sanity checks, never
an input of any stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from audiograph.core.atomic import MANIFEST, read_json
from audiograph.core.errors import ContractError


def oracle_vectors(
    data_dir: str | Path, users: pl.Series, items: pl.DataFrame, popularity: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors scoring by the hidden truth of a prepared synthetic dataset: for benchmark
    sanity only (a ceiling, not a model: it reads what no stage may).

    Returns float32 ``(user_vecs [U, d], item_vecs [I, d])`` for the ids ``users`` and
    ``items["item_id"]`` (zero where the truth lacks one), one dimension per latent (topic,
    taste) cell: a user's chance that an event lands in each cell; an item's one-hot cell,
    times (with ``popularity``) its share in its (type, topic, taste) group. The dot
    product is the chance that the user's next event of the item's type picks it (where
    no (type, topic, taste) group is empty).
    ``data_dir`` is a dataset written by :func:`prepare_synthetic` (not a split of it).
    """
    path = Path(data_dir)
    man = read_json(path / MANIFEST)
    summary = man.get("summary", {})
    if man.get("source") != "synthetic" or "truth" not in summary:
        raise ContractError(f"{path}: not a synthetic dataset with its truth (prepare it again)")
    n_topics, k = len(summary["topics"]), int(summary["tastes"])
    noise = float(summary["truth"]["taste_noise"])
    tu = pl.read_parquet(path / summary["truth"]["users"])
    ti = pl.read_parquet(path / summary["truth"]["items"])
    topic_p = tu["topic_p"].explode().to_numpy().reshape(-1, n_topics, 1)
    taste = tu["taste"].explode().to_numpy().reshape(-1, n_topics, 1)
    cell = topic_p * (noise / k + (1 - noise) * (np.arange(k) == taste))
    user_vecs = np.zeros((len(users), n_topics * k), np.float32)
    row, found = _rows(users.to_frame("user_id"), tu)
    user_vecs[found] = cell.reshape(-1, n_topics * k)[row]
    item_vecs = np.zeros((items.height, n_topics * k), np.float32)
    row, found = _rows(items.select("item_id"), ti)
    value = ti["share"].to_numpy()[row] if popularity else 1.0
    item_vecs[found, ti["topic"].to_numpy()[row] * k + ti["taste"].to_numpy()[row]] = value
    return user_vecs, item_vecs


def _rows(ids: pl.DataFrame, table: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(row of table, position in ids)`` of each id of ``ids`` found in ``table``."""
    key = ids.columns[0]
    hit = ids.with_row_index("_at").join(table.select(key).with_row_index("_row"), on=key)
    return hit["_row"].to_numpy(), hit["_at"].to_numpy()
