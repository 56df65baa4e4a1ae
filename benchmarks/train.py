"""Training benchmark: train-hgnn's step vs the same model through PyG, in one run (the same
as ``audiograph bench-train``; the code is :mod:`audiograph.hgnn.bench`).

    python benchmarks/train.py --graph GRAPH_DIR [--device cuda] [--batches N] [--json]
    python benchmarks/train.py --graph GRAPH_DIR --save NAME   # results/train-NAME.json

``--save NAME`` writes the JSON that benchmarks/README.md's table is generated from
(``benchmarks/tables.py``).
"""

import json
import sys
from pathlib import Path

from audiograph.hgnn.bench import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    name = None
    if "--save" in argv:
        k = argv.index("--save")
        name, argv = argv[k + 1], argv[:k] + argv[k + 2 :]
    res = main(argv)
    if name:
        shown = list(argv)
        if "--graph" in shown:  # a path of this machine: shown as GRAPH_DIR
            shown[shown.index("--graph") + 1] = "GRAPH_DIR"
        res["command"] = " ".join([*shown, "--save", name])
        out = Path(__file__).resolve().parent / "results" / f"train-{name}.json"
        out.write_text(json.dumps(res, indent=1) + "\n")
        print(f"saved {out}")
