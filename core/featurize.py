"""Old import path of :mod:`audiograph.core.text_encoder` (kept for existing imports)."""

from audiograph.core.text_encoder import (  # noqa: F401
    DEFAULT_CACHE,
    MAX_TAGS,
    TextEncoder,
    cache_lookup,
    default_encoder_path,
    encoder_id,
    featurize_texts,
    item_texts,
    read_cache,
    text_hashes,
    write_cache,
)
