"""``audiograph featurize DATA``: encode a catalog's item texts into the text-vector cache,
on one process or split over ``torchrun`` ranks.

Every rank reads the catalog and the cache (all before any rank writes), and computes the
same list of distinct texts still missing from it; rank ``r`` of ``W`` encodes the
``r``-th contiguous share and appends it to the cache (each write is its own atomically
renamed file, so ranks never write the same file). ``build-graph`` and ``export`` then
find every vector in the cache. The vectors equal a single process's up to the batch
padding (within 1e-6: a rank's batches hold other texts, and the attention mask makes
padding exact only up to float rounding).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from audiograph.core.distributed import barrier, finish, init_world, sum_over_ranks
from audiograph.core.text_encoder import (
    TextEncoder,
    cache_lookup,
    item_texts,
    text_hashes,
    write_cache,
)
from audiograph.graphs.config import FeaturizeConfig
from audiograph.graphs.contract import read_items


def featurize_catalog(
    data_dir: str | Path,
    cfg: FeaturizeConfig | None = None,
    quiet: bool = False,
    distributed: bool = False,
) -> dict[str, Any]:
    """Put a vector for every non-empty item text of ``data_dir`` into ``cfg.cache_dir``;
    returns ``{"texts", "cached", "encoded", "ranks", "seconds"}`` (``encoded`` summed
    over the ranks)."""
    cfg = cfg or FeaturizeConfig()
    t0 = time.perf_counter()
    world = init_world(cfg.device, distributed)
    texts = item_texts(read_items(data_dir))
    enc = TextEncoder(
        None if cfg.encoder == "default" else cfg.encoder, world.device, cfg.max_length
    )
    has_text = np.array([bool(t.strip()) for t in texts], dtype=bool)
    missing, hit = cache_lookup(text_hashes(texts), has_text, enc, cfg.cache_dir)
    barrier(world)  # every rank has read the cache before any rank adds to it
    lo, hi = (
        len(missing) * world.rank // world.size,
        len(missing) * (world.rank + 1) // world.size,
    )
    mine = missing.slice(lo, hi - lo)
    if mine.height:
        vectors = enc.encode(
            [texts[i] for i in mine["row"].to_list()],
            cfg.batch_size,
            progress=not quiet and world.main,
        )
        write_cache(cfg.cache_dir, enc, mine["text_hash"].to_list(), vectors)
    (encoded,) = sum_over_ranks((float(mine.height),), world)
    barrier(world)
    out = {
        "texts": missing.height + hit.height,
        "cached": hit.height,
        "encoded": int(encoded),
        "ranks": world.size,
        "encoder": enc.id,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    finish(world)
    return out
