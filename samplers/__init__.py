"""Stage 2: multi-link balanced link sampling and heterogeneous neighbour sampling."""

from audiograph.samplers.adjacency import Adjacency, sample_neighbors
from audiograph.samplers.link_loader import LinkNeighborLoader
from audiograph.samplers.multilink import balanced_counts, balanced_epoch, link_edges
from audiograph.samplers.neighbor import NeighborSampler

__all__ = [
    "Adjacency",
    "LinkNeighborLoader",
    "NeighborSampler",
    "balanced_counts",
    "balanced_epoch",
    "link_edges",
    "sample_neighbors",
]
