"""Stage 5: Semantic IDs — residual k-means (RQ-KMeans) tokens of item embeddings.

``semantic_ids`` tokenizes an ``audiograph export`` directory; :mod:`semantic_ids.rqkmeans`
holds the torch k-means / residual quantizer it is built on.
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
