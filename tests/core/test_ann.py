"""Nearest-neighbour search: exact scan and the faiss IVF index."""

from __future__ import annotations

import numpy as np
import pytest

from audiograph.core.ann import EXACT_MAX, INDEX_FILE, build_index, search


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_matches_argsort_across_chunks():
    v, q = unit_rows(1000, 16, 0), unit_rows(5, 16, 1)
    scores, rows = search(v, q, 7, chunk=130)  # several chunks merged
    ref = np.argsort(-(q @ v.T), axis=1, kind="stable")[:, :7]
    assert np.array_equal(rows, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(q @ v.T, ref, 1), rtol=1e-5)


def test_small_catalogs_stay_exact(tmp_path):
    assert build_index(unit_rows(50, 8, 0), tmp_path) == {"index": "exact"}
    assert not (tmp_path / INDEX_FILE).exists()
    assert EXACT_MAX >= 10_000


def test_ivf_index_recall_and_determinism(tmp_path):
    # clustered data, as embeddings are: IVF with nprobe 16 finds nearly all true neighbours
    rng = np.random.default_rng(0)
    centers = unit_rows(50, 32, 1)
    v = centers[rng.integers(0, 50, 20000)] + 0.3 * unit_rows(20000, 32, 2)
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    spec = build_index(v, tmp_path, kind="ivf", seed=3)
    assert spec["index"] == "ivf-flat" and (tmp_path / INDEX_FILE).exists()
    q = v[:200]
    _, approx = search(v, q, 10, tmp_path, spec)
    _, exact = search(v, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact, strict=True)])
    assert recall > 0.9, recall
    other = tmp_path / "again"
    other.mkdir()
    build_index(v, other, kind="ivf", seed=3)
    assert (other / INDEX_FILE).read_bytes() == (tmp_path / INDEX_FILE).read_bytes()


def test_unknown_kind():
    with pytest.raises(ValueError, match="index kind"):
        build_index(unit_rows(5, 4, 0), ".", kind="hnsw")
