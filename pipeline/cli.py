"""The ``audiograph`` command line. User errors print one line and exit with code 2."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from audiograph.core.errors import ContractError, short_reason
from audiograph.graphs.config import FeaturizeConfig, GraphConfig
from audiograph.hgnn.config import ExportConfig, HGNNConfig
from audiograph.pipeline.app import Distributed, Out, Quiet, Src, app, prepare_app
from audiograph.pipeline.config import resume_base
from audiograph.pipeline.options import Settings, config_options


def _summary(manifest: dict) -> None:
    c = manifest["counts"]
    print(
        f"[prepare {manifest['source']}] {c['items']:,} items "
        f"{manifest['items_per_type']}, {c['interactions']:,} interactions, "
        f"{c['users']:,} users, {c['queries']:,} queries; {manifest['summary']}"
    )


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
    from audiograph.graphs.adapters.lastfm import prepare_lastfm as run

    _summary(run(src, out, vertical.split(",") if vertical else None))


@prepare_app.command("douban")
def prepare_douban(src: Src = Path("../shared/data/douban-music-book"), out: Out = ...) -> None:
    """Douban music + book ratings: two item types without text."""
    from audiograph.graphs.adapters.douban import prepare_douban as run

    _summary(run(src, out))


@prepare_app.command("podcasts")
def prepare_podcasts(src: Src = Path("../shared/data/podcast-catalog"), out: Out = ...) -> None:
    """Apple Podcasts catalog: text-only items, no interactions."""
    from audiograph.graphs.adapters.podcasts import prepare_podcasts as run

    _summary(run(src, out))


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
    from audiograph.graphs.adapters.synthetic import parse_item_counts
    from audiograph.graphs.adapters.synthetic import prepare_synthetic as run

    _summary(
        run(
            out,
            users=users,
            items=parse_item_counts(items),
            seed=seed,
            interactions_per_user=interactions_per_user,
            tastes=tastes,
        )
    )


@app.command("build-graph")
@config_options(GraphConfig, "graph")
def build_graph(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (data contract).")],
    settings: Settings,
    out: Out = ...,
    quiet: Quiet = False,
) -> None:
    """Build the heterogeneous co-interaction graph of a dataset."""
    from audiograph.graphs.build import build_graph as run

    run(data_dir, out, settings.build(), quiet=quiet)


@app.command("featurize")
@config_options(FeaturizeConfig, "featurize")
def featurize(
    data_dir: Annotated[Path, typer.Argument(help="Dataset directory (data contract).")],
    settings: Settings,
    distributed: Distributed = False,
    quiet: Quiet = False,
) -> None:
    """Encode the catalog's item texts into the text-vector cache (split over torchrun
    ranks with --distributed); build-graph and export then read them from the cache."""
    from audiograph.graphs.featurize import featurize_catalog

    m = featurize_catalog(data_dir, settings.build(), quiet=quiet, distributed=distributed)
    if os.environ.get("RANK", "0") == "0" and not quiet:
        print(f"[featurize] {m['texts']:,} distinct texts: {m['cached']:,} cached, "
              f"{m['encoded']:,} encoded on {m['ranks']} rank(s) in {m['seconds']:.1f}s "
              f"-> {settings.build().cache_dir}")  # fmt: skip


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


@app.command("train-hgnn")
@config_options(HGNNConfig, "hgnn")
def train_hgnn(
    graph_dir: Annotated[Path, typer.Argument(help="Graph directory (build-graph).")],
    settings: Settings,
    out: Out = ...,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUN_DIR.")] = False,
    distributed: Distributed = False,
    quiet: Quiet = False,
) -> None:
    """Train the heterogeneous GraphSAGE by link prediction (multi-link sampler)."""
    from audiograph.hgnn.train import train_hgnn as run

    cfg = settings.build(resume_base(out, "hgnn-run") if resume else None)
    run(graph_dir, out, cfg, resume=resume, quiet=quiet, distributed=distributed)


@app.command("export")
@config_options(ExportConfig, "export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (train-hgnn).")],
    settings: Settings,
    out: Out = ...,
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
    distributed: Distributed = False,
    quiet: Quiet = False,
) -> None:
    """Layer-wise full-graph inference: an embedding for every item."""
    from audiograph.hgnn.export import export_embeddings

    m = export_embeddings(run_dir, out, catalog, settings.build(), graph=graph, quiet=quiet,
                          distributed=distributed)  # fmt: skip
    if not m:  # a rank other than 0 of a distributed export
        return
    print(
        f"[export] {m['count']:,} embeddings of dim {m['dim']} {m['per_type']}"
        f" index {m['ann']['index']} in {m['seconds']:.1f}s -> {out}"
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


@app.command(
    "bench-sampler",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench_sampler(ctx: typer.Context) -> None:
    """Benchmark the neighbour sampler against PyG (options: see --help of the script:
    --graph, --fanout, --batch-size, --seed-type, --device, --batches, --scale, --json)."""
    from audiograph.samplers.bench import main as run

    run(list(ctx.args))


@app.command(
    "bench-train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench_train(ctx: typer.Context) -> None:
    """Benchmark train-hgnn's model step against the same model through PyG (options: see
    --help of the script: --graph, --batches, --device, --hidden, --fanout, --batch-size,
    --seed-type, --json)."""
    from audiograph.hgnn.bench import main as run

    run(list(ctx.args))


@app.command("run")
def run(
    experiment: Annotated[Path, typer.Argument(help="Experiment TOML ([experiment] + stages).")],
    until: Annotated[str | None, typer.Option(help="Stop after this stage.")] = None,
    force: Annotated[
        list[str] | None, typer.Option(help="Rerun this stage even when cached (repeatable).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stage record as JSON.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Run an experiment's stages in order (prepare, split, graph, hgnn, export, twotower,
    baseline, evaluate, semantic_ids, generative, users, prefix), each cached by a hash of
    its settings and inputs so that a rerun only redoes what changed (OUT/pipeline.json)."""
    from audiograph.pipeline.runner import read_experiment, run_experiment

    exp = read_experiment(experiment)
    done = run_experiment(exp, until=until, force=tuple(force or ()), quiet=quiet)
    if as_json:
        print(json.dumps(done, indent=2))
    elif "evaluate" in done:
        from audiograph.twotower.evaluate import results_table

        report = json.loads((Path(done["evaluate"]["path"]) / "report.json").read_text())
        print(results_table(report))


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Working folder.")] = Path("runs/demo"),
    users: Annotated[int, typer.Option(help="Synthetic users.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the main job on the embedded synthetic default and print a summary."""
    from audiograph.pipeline.demo import run_demo

    run_demo(out, users=users, seed=seed)


import audiograph.pipeline.cli_generative  # noqa: E402,F401  (registers the stage commands)
import audiograph.pipeline.cli_semantic_ids  # noqa: E402,F401
import audiograph.pipeline.cli_spaces  # noqa: E402,F401
import audiograph.pipeline.cli_twotower  # noqa: E402,F401
from audiograph.pipeline.app import group_by_stage  # noqa: E402

group_by_stage()


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Expected failures (bad input or options, unreadable or foreign
    files, file-system errors) print one line on stderr and exit with code 2; an internal
    error prints one line naming a report file with the traceback (exit 1), or the
    traceback itself with ``--debug`` / ``AUDIOGRAPH_DEBUG=1``."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("AUDIOGRAPH_DEBUG", "") not in ("", "0") or "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        code = app(args=args, standalone_mode=False, prog_name="audiograph")
    except ContractError as exc:
        _fail(str(exc))
    except typer.TyperException as exc:  # click usage errors: bad or missing options
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.ctx.get_help())
            sys.exit(0)
        _fail(exc.format_message() if hasattr(exc, "format_message") else str(exc),
              getattr(exc, "exit_code", 2))  # fmt: skip
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted", 130)
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or short_reason(exc)}")
    except MemoryError:
        _fail("out of memory; try a smaller --batch-size or --chunk-size")
    except Exception as exc:
        if debug:
            raise
        report = _write_report()
        _fail(f"internal error ({type(exc).__name__}: {short_reason(exc)}); "
              f"full report in {report} (rerun with --debug to see it)", 1)  # fmt: skip
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def _write_report() -> Path:
    """Write the current exception's traceback to a report file and return its path."""
    fd, name = tempfile.mkstemp(prefix="audiograph-error-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"audiograph {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return Path(name)


if __name__ == "__main__":
    main()
