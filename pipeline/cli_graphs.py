"""``audiograph`` commands of stage 1: prepare a dataset, split it, featurize its texts,
build and describe the co-interaction graph."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from audiograph.graphs.config import FeaturizeConfig, GraphConfig, SplitConfig
from audiograph.pipeline.app import Out, Src, app, command, prepare_app
from audiograph.pipeline.options import Settings


def _summary(manifest: dict) -> None:
    """One line: what ``prepare`` wrote."""
    c, per_type = manifest["counts"], manifest["items_per_type"]
    rows = f"{c['interactions']:,} interactions, {c['users']:,} users, {c['queries']:,} queries"
    print(f"[prepare {manifest['source']}] {c['items']:,} items {per_type}, {rows}; ", end="")
    print(manifest["summary"])


@prepare_app.command("lastfm")
def prepare_lastfm(
    src: Src = Path("../shared/data/lastfm-hetrec-2k"),
    out: Out = ...,
    vertical: Annotated[
        str | None,
        typer.Option(
            help="TAG,...: artists whose most-used tag (over all tag rows, test ones "
            "included) is one of these become the item type 'vertical'; for a leak-free "
            "benchmark use split --retype vertical=TAG instead."
        ),
    ] = None,
) -> None:
    """Last.fm HetRec 2011: artists, listening counts, tags (weak signal + queries)."""
    from audiograph.graphs.adapters import lastfm

    _summary(lastfm.prepare_lastfm(src, out, vertical.split(",") if vertical else None))


@prepare_app.command("douban")
def prepare_douban(src: Src = Path("../shared/data/douban-music-book"), out: Out = ...) -> None:
    """Douban music + book ratings: two item types without text."""
    from audiograph.graphs.adapters import douban

    _summary(douban.prepare_douban(src, out))


@prepare_app.command("podcasts")
def prepare_podcasts(src: Src = Path("../shared/data/podcast-catalog"), out: Out = ...) -> None:
    """Apple Podcasts catalog: text-only items, no interactions."""
    from audiograph.graphs.adapters import podcasts

    _summary(podcasts.prepare_podcasts(src, out))


@prepare_app.command("synthetic")
def prepare_synthetic(
    out: Out = ...,
    users: Annotated[int, typer.Option(help="Number of users.")] = 3000,
    items: Annotated[
        str, typer.Option(help="Items per type, TYPE=N,...")
    ] = "music=2000,podcast=1000,audiobook=300",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    interactions_per_user: Annotated[
        float, typer.Option(help="Mean interactions per user.")
    ] = 12.0,
    tastes: Annotated[
        int,
        typer.Option(
            help="Hidden tastes per topic, shared by every item type and shown in the "
            "text only by a weak style word (1: none)."
        ),
    ] = 1,
) -> None:
    """Synthetic catalog with planted topics and a sparse audiobook type (no files needed)."""
    from audiograph.graphs.adapters import synthetic
    from audiograph.graphs.adapters.synthetic import parse_item_counts

    _summary(
        synthetic.prepare_synthetic(
            out,
            users=users,
            items=parse_item_counts(items),
            seed=seed,
            interactions_per_user=interactions_per_user,
            tastes=tastes,
        )
    )


@command("split", SplitConfig)
def split(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory.")],
    settings: Settings,
) -> None:
    """Write SPLIT_DIR/{fit,labels,train,test}: test held out (temporal when every row has a
    ts, else per user at random), train = fit + labels (the label window, the same way)."""
    from audiograph.graphs.split import split_dataset

    m = split_dataset(data_dir, settings.out, settings.build(), quiet=settings.quiet)
    print(
        f"[split] {m['method']}: train {m['train']['interactions']:,} interactions, "
        f"test {m['test']['interactions']:,} -> {settings.out}"
    )


@command("featurize", FeaturizeConfig, out=False, distributed=True)
def featurize(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (data contract).")],
    settings: Settings,
) -> None:
    """Encode the catalog's item texts into the text-vector cache (split over torchrun
    ranks with --distributed); build-graph and export then read them from the cache."""
    from audiograph.graphs.featurize import featurize_catalog

    s, cfg = settings, settings.build()
    m = featurize_catalog(data_dir, cfg, quiet=s.quiet, distributed=s.distributed)
    if os.environ.get("RANK", "0") == "0" and not s.quiet:
        print(
            f"[featurize] {m['texts']:,} distinct texts: {m['cached']:,} cached, "
            f"{m['encoded']:,} encoded on {m['ranks']} rank(s) in {m['seconds']:.1f}s "
            f"-> {cfg.cache_dir}"
        )


@command("build-graph", GraphConfig)
def build_graph(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (data contract).")],
    settings: Settings,
) -> None:
    """Build the heterogeneous co-interaction graph of a dataset."""
    from audiograph.graphs import build

    build.build_graph(data_dir, settings.out, settings.build(), quiet=settings.quiet)


@app.command("info")
def info(
    graph_dir: Annotated[Path, typer.Argument(help="Graph directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print node/edge counts, feature dim and build config of a graph directory."""
    from audiograph.graphs.store import graph_info

    summary = graph_info(graph_dir)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"graph {graph_dir}: feature dim {summary['feature_dim']}")
    for t, n in summary["node_types"].items():
        print(f"  node {t:<24}{n:>12,}  (featureless {summary['featureless'][t]:,})")
    for k, n in summary["edge_types"].items():
        print(f"  edge {k:<24}{n:>12,}")
