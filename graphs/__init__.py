"""Stage 1: catalog data contract, text featurization and the co-interaction graph."""

from audiograph.core.errors import ContractError
from audiograph.graphs.build import GraphConfig, build_graph
from audiograph.graphs.contract import Dataset, read_dataset, write_dataset
from audiograph.graphs.store import graph_info, load_graph, load_node_ids

__all__ = [
    "ContractError",
    "Dataset",
    "GraphConfig",
    "build_graph",
    "graph_info",
    "load_graph",
    "load_node_ids",
    "read_dataset",
    "write_dataset",
]
