"""Making an item type sparse in the training side of a split, in the two ways a new
content type is sparse: few users adopted it (:func:`keep_adopters`), and the adopters
have few interactions with it (:func:`downsample_type`). Both are seeded and independent of
the row order of the input; both keep or drop whole ``(user, item)`` pairs (every signal).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from audiograph.core.errors import ContractError

PAIR = ["user_id", "item_id"]


def _typed_items(items: pl.DataFrame, item_type: str) -> pl.DataFrame:
    types = items["item_type"].unique().sort().to_list()
    if item_type not in types:
        raise ContractError(
            f"items.parquet, column 'item_type': no item of type {item_type!r} "
            f"(types: {', '.join(types)})"
        )
    return items.filter(pl.col("item_type") == item_type).select("item_id")


def seeded_subset(values: pl.Series, n: int, rng: np.random.Generator) -> pl.Series:
    """``n`` of ``values`` drawn by ``rng`` (one permutation), kept in their given order."""
    return values.gather(np.sort(rng.permutation(values.len())[:n]))


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest int, halves up (``numpy.round`` rounds half to even)."""
    return int(np.floor(x + 0.5))


def downsample_type(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    item_type: str,
    keep: float,
    seed: int,
) -> pl.DataFrame:
    """Keep ``round(keep * P)`` of the ``P`` distinct ``(user, item)`` pairs whose item is
    of ``item_type`` (all rows of a kept pair; every other row untouched).

    Args:
        interactions: contract interactions ``[R rows]`` (``user_id``, ``item_id``, ...).
        items: items table (``item_id``, ``item_type``).
        item_type: the type to thin out; must occur in ``items``.
        keep: fraction of pairs kept, in [0, 1].
        seed: sampling seed (the result does not depend on row order).

    Returns:
        The kept rows ``[R' <= R rows]``, in their input order, same columns.
    """
    if not 0.0 <= keep <= 1.0:
        raise ContractError(f"keep must be in [0, 1], got {keep}")
    typed = _typed_items(items, item_type)
    pairs = interactions.join(typed, on="item_id").select(PAIR).unique().sort(PAIR)
    n_keep = round_half_up(keep * pairs.height)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(pairs.height)[:n_keep])
    dropped = pairs.with_row_index("_i").filter(~pl.col("_i").is_in(chosen)).drop("_i")
    return interactions.join(dropped, on=PAIR, how="anti", maintain_order="left")


def keep_adopters(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    item_type: str,
    share: float,
    seed: int,
) -> tuple[pl.DataFrame, pl.Series]:
    """Keep ``item_type``'s interactions for a seeded ``share`` of the users who have any
    (``round_half_up(share * U)`` of the ``U`` such users); the others lose every row of
    the type and are cold for it, as users are when a content type launches.

    Args:
        interactions: contract interactions ``[R rows]``.
        items: items table (``item_id``, ``item_type``).
        item_type: the launched type; must occur in ``items``.
        share: fraction of the type's users kept, in [0, 1].
        seed: sampling seed.

    Returns:
        ``(kept rows [R' <= R] in input order, the adopters' user_ids sorted)``.
    """
    if not 0.0 <= share <= 1.0:
        raise ContractError(f"--adopters: share must be in [0, 1], got {share}")
    typed = _typed_items(items, item_type)
    of_type = interactions.select(PAIR).join(typed, on="item_id")
    users = of_type["user_id"].unique().sort()
    rng = np.random.default_rng([seed, 1])
    adopters = seeded_subset(users, round_half_up(share * users.len()), rng)
    drop = of_type.filter(~pl.col("user_id").is_in(adopters.implode())).unique()
    return interactions.join(drop, on=PAIR, how="anti", maintain_order="left"), adopters


def release_new_items(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    item_type: str,
    share: float,
    seed: int,
) -> tuple[pl.DataFrame, pl.Series]:
    """Make ``round(share * N)`` of the ``N`` items of ``item_type`` new: released only
    after the cut, so none of their rows stays in ``interactions`` (the training side).

    Args:
        interactions: training-side rows ``[R rows]`` (``user_id``, ``item_id``, ...).
        items: items table (``item_id``, ``item_type``); the draw is over its items of
            ``item_type`` sorted by id (seeded, independent of row order).
        item_type: the type; must occur in ``items``.
        share: fraction of the type's items made new, in (0, 1).
        seed: sampling seed.

    Returns:
        ``(rows kept [R' <= R], the new items' ids)``; rows keep their input order.
    """
    if not 0.0 < share < 1.0:
        raise ContractError(f"new-items share must be in (0, 1), got {share}")
    typed = _typed_items(items, item_type)["item_id"].sort()
    n_new = round_half_up(share * typed.len())
    rng = np.random.default_rng([seed, 0x6E6577])  # its own stream: "new"
    new = seeded_subset(typed, n_new, rng).alias("item_id")
    kept = interactions.filter(~pl.col("item_id").is_in(new.implode()))
    return kept, new
