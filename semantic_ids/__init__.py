"""Stage 5: Semantic IDs and the joint generative search + recommendation model.

* :mod:`audiograph.semantic_ids.spaces` / :mod:`audiograph.semantic_ids.finetune` — embedding
  spaces to tokenize (content, search-tuned, multi-task bi-encoders; fused spaces);
* :func:`semantic_ids` — RQ-KMeans tokens of an embeddings directory
  (:mod:`audiograph.semantic_ids.rqkmeans` holds the torch k-means / residual quantizer);
* :mod:`audiograph.semantic_ids.generative` (training),
  :mod:`audiograph.semantic_ids.decoding` (token layout, SID trie, constrained beam search),
  :mod:`audiograph.semantic_ids.generate` (answers, Recall@k).
"""

from audiograph.semantic_ids.rqkmeans import (
    code_stats,
    decode_rq,
    disambiguate,
    encode_rq,
    fit_rq,
    kmeans,
    reconstruction_mse,
)
from audiograph.semantic_ids.tokenize import load_semantic_ids, semantic_ids

__all__ = [
    "code_stats",
    "decode_rq",
    "disambiguate",
    "encode_rq",
    "fit_rq",
    "kmeans",
    "load_semantic_ids",
    "reconstruction_mse",
    "semantic_ids",
]
