"""Item tags that users gave: recounted from one side's interactions only.

When an item's tags come from its listeners (Last.fm), the tag text is derived from
interactions, and a split must not let test-period tags reach the training side. An
interactions table may carry a ``tags`` column (``list[str]``: the tags that row's user
gave the item); then each side of a split rebuilds every item's ``tags`` from that side's
rows only — most used first, ties by name — and items with no tagged row there get none.
"""

from __future__ import annotations

import polars as pl

TAGS = "tags"


def has_user_tags(interactions: pl.DataFrame | None) -> bool:
    """Whether ``interactions`` carries per-row user tags (a ``list[str]`` ``tags``)."""
    return (
        interactions is not None
        and TAGS in interactions.columns
        and interactions.schema[TAGS] == pl.List(pl.Utf8)
    )


def recount_tags(items: pl.DataFrame, interactions: pl.DataFrame) -> pl.DataFrame:
    """``items`` with ``tags`` rebuilt from the ``tags`` of ``interactions`` ``[R rows]``:
    per item, each tag counted once per row, most used first, ties by name."""
    counts = (
        interactions.select("item_id", TAGS)
        .explode(TAGS)
        .drop_nulls(TAGS)
        .group_by("item_id", TAGS)
        .len("n")
    )
    per_item = counts.group_by("item_id").agg(
        pl.col(TAGS).sort_by("n", TAGS, descending=[True, False])
    )
    empty = pl.lit([], pl.List(pl.Utf8))
    return (
        items.drop(TAGS)
        .join(per_item, on="item_id", how="left", maintain_order="left")
        .with_columns(pl.col(TAGS).fill_null(empty))
        .select(items.columns)
    )


def side_queries(
    queries: pl.DataFrame, train: pl.DataFrame, test: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(train, test)`` search queries when a query is a tag users gave an item.

    A ``(query, item_id)`` row of ``queries`` goes to the train side when some train row
    gave ``item_id`` that tag, and to the test side when only test rows did, and the tag is
    a train query too: a test pair's tag never reaches the training side's item text
    (:func:`recount_tags`), so the test asks which items will be given a known tag. Rows
    that no interaction gave (none, for the adapters here) are dropped.
    """

    def pairs(side: pl.DataFrame) -> pl.DataFrame:
        return (
            side.select("item_id", pl.col(TAGS).alias("query"))
            .explode("query")
            .drop_nulls("query")
            .unique()
        )

    on = ["query", "item_id"]
    q_train = queries.join(pairs(train), on=on, how="semi", maintain_order="left")
    q_test = (
        queries.join(pairs(test), on=on, how="semi", maintain_order="left")
        .join(q_train, on=on, how="anti", maintain_order="left")
        .filter(pl.col("query").is_in(q_train["query"].unique().implode()))
    )
    return q_train, q_test
