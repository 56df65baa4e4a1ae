"""Neighbour-sampler benchmark: audiograph vs PyG ``NeighborLoader`` (the same as
``audiograph bench-sampler``; the code is :mod:`audiograph.samplers.bench`).

    python benchmarks/sampler.py [--graph GRAPH_DIR] [--fanout 15,10] [--batch-size 1024]
                                 [--seed-type T] [--device cuda] [--batches N] [--json]
    python benchmarks/sampler.py --save NAME      # results/sampler-NAME.json

``--save NAME`` writes the JSON that benchmarks/README.md's table is generated from
(``benchmarks/tables.py``).
"""

from saved import run_and_save

if __name__ == "__main__":
    run_and_save("bench-sampler", "sampler")
