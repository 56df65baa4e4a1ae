"""Stage 3: heterogeneous GraphSAGE trained by link prediction, and its embedding export
(names imported on first use)."""

from audiograph.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "HGNNConfig": "audiograph.hgnn.config",
        "ExportConfig": "audiograph.hgnn.config",
        "HeteroSAGE": "audiograph.hgnn.model",
        "MaxPoolRelation": "audiograph.hgnn.model",
        "in_batch_softmax_loss": "audiograph.hgnn.loss",
        "max_margin_loss": "audiograph.hgnn.loss",
        "train_hgnn": "audiograph.hgnn.train",
        "export_embeddings": "audiograph.hgnn.export",
    },
)
