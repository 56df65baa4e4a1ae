"""Stage 5: Semantic IDs and the joint generative search + recommendation model.

* :mod:`semantic_ids.spaces` / :mod:`semantic_ids.finetune` — embedding spaces to tokenize
  (content, search-tuned, multi-task bi-encoders; fused spaces);
* :func:`semantic_ids` — RQ-KMeans tokens of an embeddings directory
  (:mod:`semantic_ids.rqkmeans` holds the torch k-means / residual quantizer);
* :mod:`semantic_ids.generative` (training), :mod:`semantic_ids.decoding` (token layout,
  SID trie, constrained beam search), :mod:`semantic_ids.generate` (answers, Recall@k).
"""

from semantic_ids.rqkmeans import (
    code_stats,
    decode_rq,
    disambiguate,
    encode_rq,
    fit_rq,
    kmeans,
    reconstruction_mse,
)
from semantic_ids.tokenize import load_semantic_ids, semantic_ids

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
