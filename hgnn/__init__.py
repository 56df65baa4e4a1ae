"""Stage 3: heterogeneous GraphSAGE trained by link prediction, and its embedding export."""

from audiograph.hgnn.loss import in_batch_softmax_loss, max_margin_loss
from audiograph.hgnn.model import HeteroSAGE, MaxPoolRelation

__all__ = ["HeteroSAGE", "MaxPoolRelation", "in_batch_softmax_loss", "max_margin_loss"]
