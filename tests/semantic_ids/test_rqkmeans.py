"""RQ-KMeans Semantic IDs: k-means recovery, residual levels, determinism, disambiguation,
code statistics and the tokenizer's output directory."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from audiograph.core.errors import ContractError
from audiograph.semantic_ids import (
    code_stats,
    decode_rq,
    disambiguate,
    encode_rq,
    fit_rq,
    kmeans,
    load_semantic_ids,
    reconstruction_mse,
    semantic_ids,
)


def clustered(n: int = 3000, d: int = 16, centers: int = 40, noise: float = 0.3, seed: int = 0):
    """Seeded unit vectors around ``centers`` random directions → float32 ``[n, d]``."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    x = c[rng.integers(centers, size=n)] + noise * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fake_emb_dir(root, n: int = 600, d: int = 12, seed: int = 0):
    """An EMB_DIR as ``audiograph export`` writes it (ids.parquet, embeddings.npy, manifest)."""
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "embeddings.npy", clustered(n, d, centers=15, seed=seed))
    pl.DataFrame(
        {
            "item_id": [f"i{r}" for r in range(n)],
            "item_type": ["music" if r % 3 else "podcast" for r in range(n)],
            "row": np.arange(n, dtype=np.int64),
        }
    ).write_parquet(root / "ids.parquet")
    (root / "manifest.json").write_text(json.dumps({"kind": "embeddings"}))
    return root


def test_kmeans_recovers_planted_clusters(device):
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(8, 10)) * 10
    labels = np.repeat(np.arange(8), 60)
    x = (centers[labels] + 0.1 * rng.normal(size=(len(labels), 10))).astype(np.float32)
    c = kmeans(x, 8, seed=3, device=device).cpu()
    assert c.shape == (8, 10) and c.dtype == torch.float32
    found = torch.cdist(torch.from_numpy(x), c).argmin(1).numpy()
    # a bijection between planted and found clusters: the partition is recovered exactly
    pairs = set(zip(labels.tolist(), found.tolist(), strict=True))
    assert len(pairs) == 8 and len({p[1] for p in pairs}) == 8
    # every centroid sits on its cluster's mean
    for lab, f in pairs:
        np.testing.assert_allclose(c[f].numpy(), x[labels == lab].mean(0), atol=1e-4)
    # a training sample gives the same partition on such data
    c2 = kmeans(x, 8, seed=3, device=device, sample=200).cpu()
    assert (
        len(
            set(
                zip(
                    labels.tolist(),
                    torch.cdist(torch.from_numpy(x), c2).argmin(1).tolist(),
                    strict=True,
                )
            )
        )
        == 8
    )


def test_kmeans_duplicates_and_bad_k():
    # 3 distinct points, 5 clusters: empty clusters are re-seeded, no NaN, no hang
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    c = kmeans(x, 5, iters=5)
    assert torch.isfinite(c).all()
    assert torch.cdist(torch.from_numpy(x), c).min(1).values.max() < 1e-6
    with pytest.raises(ValueError, match="k must be"):
        kmeans(x, 13)


def test_mse_falls_with_levels(device):
    x = clustered()
    errs = []
    for levels in (1, 2, 3):
        books = fit_rq(x, levels, codebook_size=16, iters=15, seed=0, device=device)
        assert len(books) == levels and all(b.shape == (16, 16) for b in books)
        codes = encode_rq(x, books)
        assert codes.shape == (len(x), levels) and codes.dtype == torch.int64
        assert int(codes.min()) >= 0 and int(codes.max()) < 16
        errs.append(reconstruction_mse(x, codes, books)["mse"])
    assert errs[0] > errs[1] > errs[2] > 0
    assert errs[2] < 0.6 * errs[0]


def test_encode_decode_consistency():
    x = clustered(500)
    books = fit_rq(x, 2, codebook_size=8, sample_per_code=None)
    codes = encode_rq(x, books)
    # chunking does not change the codes; each code is the nearest centroid of its residual
    assert torch.equal(encode_rq(x, books, chunk=7), codes)
    r0 = torch.from_numpy(x)
    assert torch.equal(torch.cdist(r0, books[0]).argmin(1), codes[:, 0])
    r1 = r0 - books[0][codes[:, 0]]
    assert torch.equal(torch.cdist(r1, books[1]).argmin(1), codes[:, 1])
    rec = decode_rq(codes, books)
    torch.testing.assert_close(rec, books[0][codes[:, 0]] + books[1][codes[:, 1]])
    mse = reconstruction_mse(x, codes, books)
    assert mse["mse"] == pytest.approx(float(((r0 - rec) ** 2).mean()), rel=1e-5)
    assert mse["relative_error"] == pytest.approx(
        float(((r0 - rec) ** 2).sum() / (r0**2).sum()), rel=1e-5
    )
    # a prefix of the codes decodes with the first levels only
    torch.testing.assert_close(decode_rq(codes[:, :1], books), books[0][codes[:, 0]])
    with pytest.raises(ValueError, match="codes must be"):
        decode_rq(disambiguate(codes), books)


def test_same_seed_same_codes_other_seed_other_codes():
    x = clustered(2000, centers=60)
    runs = [fit_rq(x, 2, 32, iters=10, seed=s, sample_per_code=32) for s in (7, 7, 8)]
    codes = [encode_rq(x, books) for books in runs]
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert torch.equal(codes[0], codes[1])
    assert not torch.equal(codes[0], codes[2])


def test_disambiguate_hand_example():
    codes = torch.tensor([[0, 1], [2, 2], [0, 1], [3, 3], [0, 1], [2, 2]])
    out = disambiguate(codes)
    assert out.dtype == torch.int64 and out.shape == (6, 3)
    assert torch.equal(out[:, :2], codes)
    assert out[:, 2].tolist() == [0, 0, 1, 0, 2, 1]  # rank in row order within each tuple


def test_disambiguate_makes_every_id_unique():
    codes = torch.from_numpy(np.random.default_rng(0).integers(0, 4, size=(5000, 3)))
    out = disambiguate(codes)
    assert torch.equal(out[:, :3], codes)
    assert len(torch.unique(out, dim=0)) == len(out)
    assert int(out[:, 3].max()) == code_stats(codes, 4)["max_extra_code"]
    # wide codes (no int64 key packing) take the same path through torch.unique(dim=0)
    wide = torch.cat([codes, torch.full((5000, 30), 1000)], 1)
    assert torch.equal(disambiguate(wide)[:, -1], out[:, 3])


def test_code_stats_hand_example():
    codes = np.array([[0, 1], [0, 1], [1, 2], [3, 3]])
    s = code_stats(codes, codebook_size=4)
    assert s["count"] == 4
    assert s["unique_fraction"] == 0.75
    assert s["collision_rate"] == 0.5
    assert s["max_extra_code"] == 1 and s["max_group_size"] == 2
    assert [lv["usage"] for lv in s["levels"]] == [0.75, 0.75]
    assert [lv["entropy_bits"] for lv in s["levels"]] == pytest.approx([1.5, 1.5])
    assert code_stats(np.array([[0], [1], [2], [3]]), 4)["levels"][0]["entropy_bits"] == 2.0


def test_semantic_ids_round_trip(tmp_path):
    emb = fake_emb_dir(tmp_path / "emb")
    m = semantic_ids(emb, tmp_path / "sid", levels=2, codebook_size=16, iters=10, seed=1)
    assert m["kind"] == "semantic-ids" and m["levels"] == 2 and m["codebook_size"] == 16
    assert m["count"] == 600 and m["dim"] == 12 and m["id_length"] == 3
    for key in ("unique_fraction", "collision_rate", "max_extra_code", "levels", "mse"):
        assert key in m["stats"]
    assert m["seconds"] >= 0 and m["emb_dir"] == str(emb.absolute())
    codes, books, manifest = load_semantic_ids(tmp_path / "sid")
    assert manifest == json.loads((tmp_path / "sid" / "manifest.json").read_text())
    assert codes.columns == ["item_id", "item_type", "codes", "sid"]
    assert codes.height == 600 and codes["sid"].n_unique() == 600
    assert codes["item_id"].to_list() == [f"i{r}" for r in range(600)]
    mat = np.array(codes["codes"].to_list())
    assert mat.shape == (600, 3)
    assert codes["sid"][0] == "-".join(map(str, mat[0]))
    assert books.shape == (2, 16, 12) and books.dtype == np.float32
    # the stored codebooks re-encode the embeddings to the stored codes
    x = np.load(emb / "embeddings.npy")
    assert np.array_equal(encode_rq(x, torch.from_numpy(books)).numpy(), mat[:, :2])
    # same seed → the same IDs, written over the previous output
    semantic_ids(emb, tmp_path / "sid", levels=2, codebook_size=16, iters=10, seed=1)
    assert load_semantic_ids(tmp_path / "sid")[0].equals(codes)


def test_rows_follow_the_row_column(tmp_path):
    emb = fake_emb_dir(tmp_path / "emb", n=100)
    ids = pl.read_parquet(emb / "ids.parquet")
    ids.reverse().write_parquet(emb / "ids.parquet")  # file order ≠ row order
    semantic_ids(emb, tmp_path / "sid", levels=1, codebook_size=4)
    codes = load_semantic_ids(tmp_path / "sid")[0]
    assert codes["item_id"].to_list() == ids["item_id"].to_list()


def test_bad_inputs(tmp_path):
    emb = fake_emb_dir(tmp_path / "emb", n=50)
    out = tmp_path / "sid"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContractError, match="not an embeddings directory"):
        semantic_ids(tmp_path / "empty", out)
    with pytest.raises(ContractError, match="larger than the number of items"):
        semantic_ids(emb, out, codebook_size=64)
    with pytest.raises(ContractError, match="levels must be >= 1"):
        semantic_ids(emb, out, levels=0, codebook_size=4)
    with pytest.raises(ContractError, match="codebook-size must be >= 2"):
        semantic_ids(emb, out, codebook_size=1)
    assert not out.exists()
    x = np.load(emb / "embeddings.npy")
    x[7, 3] = np.nan
    np.save(emb / "embeddings.npy", x)
    with pytest.raises(ContractError, match="non-finite.*row 7: item_id='i7'"):
        semantic_ids(emb, out, codebook_size=4)
    (emb / "embeddings.npy").unlink()
    with pytest.raises(ContractError, match=r"without embeddings\.npy; rebuild it"):
        semantic_ids(emb, out, codebook_size=4)
    np.save(emb / "embeddings.npy", np.zeros((40, 12), np.float32))
    with pytest.raises(ContractError, match="one per row"):
        semantic_ids(emb, out, codebook_size=4)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data.txt").write_text("x")
    with pytest.raises(ContractError, match="not written by audiograph"):
        semantic_ids(fake_emb_dir(tmp_path / "emb2", n=30), keep, codebook_size=4)
    assert (keep / "data.txt").exists()
    assert not out.exists()
