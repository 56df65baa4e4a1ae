"""Stage 1: catalog data contract, text featurization, splits and the co-interaction
graph (names imported on first use)."""

from audiograph.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ContractError": "audiograph.core.errors",
        "Dataset": "audiograph.graphs.contract",
        "GraphConfig": "audiograph.graphs.config",
        "SplitConfig": "audiograph.graphs.config",
        "build_graph": "audiograph.graphs.build",
        "split_dataset": "audiograph.graphs.split",
        "graph_info": "audiograph.graphs.store",
        "load_graph": "audiograph.graphs.store",
        "load_node_ids": "audiograph.graphs.store",
        "read_dataset": "audiograph.graphs.contract",
        "write_dataset": "audiograph.graphs.contract",
    },
)
