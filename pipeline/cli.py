"""The ``audiograph`` command line: the entry point, ``run``, ``demo`` and the sampler
benchmark; each stage's commands live in ``cli_<stage>.py`` (graphs, hgnn, twotower,
semantic_ids). User errors print one line and exit with code 2."""

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
from audiograph.pipeline.app import Quiet, app, command
from audiograph.pipeline.options import Settings
from audiograph.samplers.config import SamplerBenchConfig


@command("bench-sampler", SamplerBenchConfig, out=False, quiet=False)
def bench_sampler(
    settings: Settings,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> dict:
    """Benchmark the neighbour sampler against PyG's NeighborLoader on one graph (by default
    a 42.5 M-edge synthetic one); the peer runs when torch-sparse or pyg-lib is installed."""
    from audiograph.samplers import bench

    result = bench.run_sampler_bench(settings.build())
    if as_json:
        print(json.dumps(result))
    else:
        bench.print_table(result)
    return result


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


import audiograph.pipeline.cli_graphs  # noqa: E402,F401  (registers the stage commands)
import audiograph.pipeline.cli_hgnn  # noqa: E402,F401
import audiograph.pipeline.cli_semantic_ids  # noqa: E402,F401
import audiograph.pipeline.cli_twotower  # noqa: E402,F401
from audiograph.pipeline.app import escape_help, group_by_stage  # noqa: E402

group_by_stage()
escape_help()


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
        _fail(
            exc.format_message() if hasattr(exc, "format_message") else str(exc),
            getattr(exc, "exit_code", 2),
        )
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
        _fail(
            f"internal error ({type(exc).__name__}: {short_reason(exc)}); "
            f"full report in {report} (rerun with --debug to see it)",
            1,
        )
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
