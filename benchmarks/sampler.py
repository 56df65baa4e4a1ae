"""Neighbour-sampler benchmark: audiograph vs PyG ``NeighborLoader`` (the same as
``audiograph bench-sampler``; the code is :mod:`audiograph.samplers.bench`).

    python benchmarks/sampler.py [--device cuda] [--batches N] [--json]
"""

from audiograph.samplers.bench import main

if __name__ == "__main__":
    main()
