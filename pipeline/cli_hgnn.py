"""``audiograph`` commands of stage 3: train the HGNN, export its embeddings, nearest
neighbours, user vectors as mean item vectors, the training benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from audiograph.hgnn.config import ExportConfig, HGNNConfig, TrainBenchConfig
from audiograph.pipeline.app import Out, Quiet, app, command
from audiograph.pipeline.options import Settings


@command("train-hgnn", HGNNConfig, resumes="hgnn-run", distributed=True)
def train_hgnn(
    graph_dir: Annotated[Path, typer.Argument(help="Graph directory (build-graph).")],
    settings: Settings,
) -> None:
    """Train the heterogeneous GraphSAGE by link prediction (multi-link sampler)."""
    from audiograph.hgnn import train

    s = settings
    train.train_hgnn(
        graph_dir, s.out, s.build(), resume=s.resume, quiet=s.quiet, distributed=s.distributed
    )


@command("export", ExportConfig, distributed=True)
def export(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (train-hgnn).")],
    settings: Settings,
    catalog: Annotated[
        Path | None,
        typer.Option(
            help="Dataset dir: its items not in the graph get embeddings from their text."
        ),
    ] = None,
    graph: Annotated[
        Path | None,
        typer.Option(
            help="Another graph over the run's nodes (e.g. built on all of "
            "SPLIT/train at serving time); default: the run's graph."
        ),
    ] = None,
) -> None:
    """Layer-wise full-graph inference: an embedding for every item."""
    from audiograph.hgnn.export import export_embeddings

    s = settings
    m = export_embeddings(
        run_dir, s.out, catalog, s.build(), graph=graph, quiet=s.quiet, distributed=s.distributed
    )
    if not m:  # a rank other than 0 of a distributed export
        return
    print(
        f"[export] {m['count']:,} embeddings of dim {m['dim']} {m['per_type']}"
        f" index {m['ann']['index']} in {m['seconds']:.1f}s -> {s.out}"
    )


@app.command("neighbors")
def neighbors(
    emb_dir: Annotated[Path, typer.Argument(help="Embeddings directory (export).")],
    item_id: Annotated[str, typer.Argument(help="Query item id.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Number of neighbours.")] = 10,
    catalog: Annotated[Path | None, typer.Option(help="Dataset dir for titles.")] = None,
) -> None:
    """Print the nearest items (exact cosine) with titles."""
    from audiograph.hgnn.neighbors import nearest_neighbors

    df = nearest_neighbors(emb_dir, item_id, k=k, catalog=catalog)
    for row in df.iter_rows(named=True):
        title = row.get("title") or ""
        print(f"{row['score']:.4f}  {row['item_type']:<12}{row['item_id']:<24}{title}")


@app.command("embed-users")
def embed_users(
    data_dir: Annotated[Path, typer.Argument(help="Dataset (e.g. SPLIT_DIR/train).")],
    emb: Annotated[Path, typer.Option(help="Item embeddings directory (export).")] = ...,
    out: Out = ...,
    weighted: Annotated[
        bool, typer.Option(help="Weight each item by the interaction's weight.")
    ] = True,
    quiet: Quiet = False,
) -> None:
    """Per user, the mean item vector of what the user consumed -> user vectors directory
    (the two-tower's user tower: export-twotower)."""
    from audiograph.hgnn.user_means import export_user_means

    m = export_user_means(emb, data_dir, out, weighted=weighted, quiet=quiet)
    print(f"[embed-users] {m['users']:,} users, dim {m['dim']} -> {out}")


@command("bench-train", TrainBenchConfig, out=False, quiet=False)
def bench_train(
    settings: Settings,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> dict:
    """Benchmark train-hgnn's model step against the same model through PyG, compute only
    and end to end (by default on the 1 M-item synthetic graph of bench-sampler)."""
    from audiograph.hgnn import bench

    res = bench.run_train_bench(settings.build())
    title = f"bench-train on {res['graph']}: {res['config']}"
    if res["load"]:
        title += f"; {res['load']} busy process(es) beside both sides"
    print(json.dumps(res) if as_json else bench.table(res, title))
    return res
