"""Stage 2: multi-link balanced link sampling and heterogeneous neighbour sampling.

Names are imported on first use, so that the command line (which reads
:mod:`audiograph.samplers.config`) starts without torch.
"""

from audiograph.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Adjacency": "audiograph.samplers.adjacency",
        "sample_neighbors": "audiograph.samplers.adjacency",
        "LinkNeighborLoader": "audiograph.samplers.link_loader",
        "balanced_counts": "audiograph.samplers.multilink",
        "balanced_epoch": "audiograph.samplers.multilink",
        "link_edges": "audiograph.samplers.multilink",
        "NeighborSampler": "audiograph.samplers.neighbor",
        "SamplerBenchConfig": "audiograph.samplers.config",
    },
)
