"""Stage 5: Semantic IDs and the joint generative search + recommendation model.

* :mod:`audiograph.semantic_ids.spaces` / :mod:`audiograph.semantic_ids.finetune` — embedding
  spaces to tokenize (content, search-tuned, multi-task bi-encoders; fused spaces);
* :func:`semantic_ids` — RQ-KMeans tokens of an embeddings directory
  (:mod:`audiograph.semantic_ids.rqkmeans` holds the torch k-means / residual quantizer);
* :mod:`audiograph.semantic_ids.generative_train` (training),
  :mod:`audiograph.semantic_ids.decoding` (token layout, SID trie, constrained beam search),
  :mod:`audiograph.semantic_ids.generate` (answers),
  :mod:`audiograph.semantic_ids.evaluate` (Recall@k of a generative or prefix run);
* :mod:`audiograph.semantic_ids.prefix` (a user's vector as a soft token before the frozen
  model: personalised search, rec from the user token) and
  :mod:`audiograph.semantic_ids.prefix_train` (its training).

Names are imported on first use.
"""

from audiograph.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "code_stats": "audiograph.semantic_ids.rqkmeans",
        "decode_rq": "audiograph.semantic_ids.rqkmeans",
        "disambiguate": "audiograph.semantic_ids.rqkmeans",
        "encode_rq": "audiograph.semantic_ids.rqkmeans",
        "fit_rq": "audiograph.semantic_ids.rqkmeans",
        "kmeans": "audiograph.semantic_ids.rqkmeans",
        "reconstruction_mse": "audiograph.semantic_ids.rqkmeans",
        "load_semantic_ids": "audiograph.semantic_ids.assign",
        "semantic_ids": "audiograph.semantic_ids.assign",
        "SemanticIDConfig": "audiograph.semantic_ids.config",
        "GenerativeConfig": "audiograph.semantic_ids.config",
        "PrefixConfig": "audiograph.semantic_ids.config",
        "load_prefix": "audiograph.semantic_ids.prefix",
        "personal_search": "audiograph.semantic_ids.prefix",
        "recommend_for_users": "audiograph.semantic_ids.prefix",
        "evaluate_generative": "audiograph.semantic_ids.evaluate",
        "train_prefix": "audiograph.semantic_ids.prefix_train",
        "train_generative": "audiograph.semantic_ids.generative_train",
    },
)
