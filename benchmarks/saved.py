"""``--save NAME`` for the benchmark scripts that wrap a CLI benchmark (``train.py``,
``sampler.py``): run it, then write its result to ``results/KIND-NAME.json`` with the
command that produced it (graph paths shown as ``GRAPH_DIR``: they are this machine's)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PATH_OPTIONS = ("--graph", "--multilink-graph")


def run_and_save(main: Callable[[list[str]], dict[str, Any]], kind: str) -> None:
    """``main(argv)`` on this script's arguments minus ``--save NAME``; saves when given."""
    argv, name = sys.argv[1:], None
    if "--save" in argv:
        k = argv.index("--save")
        name, argv = argv[k + 1], argv[:k] + argv[k + 2 :]
    res = main(argv)
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
