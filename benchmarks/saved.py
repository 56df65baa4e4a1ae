"""``--save NAME`` for the benchmark scripts that wrap a CLI benchmark (``train.py``:
``audiograph bench-train``, ``sampler.py``: ``audiograph bench-sampler``): run the command
with the script's options, then write its result to ``results/KIND-NAME.json`` with the
command that produced it (graph paths shown as ``GRAPH_DIR``: they are this machine's)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PATH_OPTIONS = ("--graph", "--multilink-graph")


def run_and_save(command: str, kind: str) -> None:
    """``audiograph COMMAND`` on this script's arguments minus ``--save NAME``, as the
    command line runs it (its options, its checks); saves its result when asked."""
    import typer

    from audiograph.core.errors import ContractError
    from audiograph.pipeline.cli import app

    argv, name = sys.argv[1:], None
    if "--save" in argv:
        k = argv.index("--save")
        name, argv = argv[k + 1], argv[:k] + argv[k + 2 :]
    try:
        res = typer.main.get_command(app).main([command, *argv], standalone_mode=False)
    except ContractError as exc:
        raise SystemExit(f"error: {exc}") from None
    if not isinstance(res, dict):  # --help, or a usage error click has printed
        return
    if name is None:
        return
    shown = list(argv)
    for opt in PATH_OPTIONS:
        if opt in shown:
            shown[shown.index(opt) + 1] = "GRAPH_DIR"
    res["command"] = " ".join([*shown, "--save", name])
    out = RESULTS / f"{kind}-{name}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"saved {out}")
