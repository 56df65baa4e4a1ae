"""Stage 2: multi-link balanced link sampling and heterogeneous neighbour sampling."""

from samplers.adjacency import Adjacency, sample_neighbors
from samplers.link_loader import LinkNeighborLoader
from samplers.multilink import balanced_counts, balanced_epoch, link_edges
from samplers.neighbor import NeighborSampler

__all__ = [
    "Adjacency",
    "LinkNeighborLoader",
    "NeighborSampler",
    "balanced_counts",
    "balanced_epoch",
    "link_edges",
    "sample_neighbors",
]
