"""Training benchmark: train-hgnn's step vs the same model through PyG, in one run (the same
as ``audiograph bench-train``; the code is :mod:`audiograph.hgnn.bench`).

    python benchmarks/train.py --graph GRAPH_DIR [--device cuda] [--batches N] [--json]
    python benchmarks/train.py --graph GRAPH_DIR --save NAME   # results/train-NAME.json

``--save NAME`` writes the JSON that benchmarks/README.md's table is generated from
(``benchmarks/tables.py``).
"""

from saved import run_and_save

if __name__ == "__main__":
    run_and_save("bench-train", "train")
