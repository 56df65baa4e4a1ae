"""audiograph: graph learning on heterogeneous audio catalogs.

One namespace; the stages are subpackages, each reading the previous stage's artifacts:

* :mod:`audiograph.graphs` — data contract, text features, co-interaction graph (stage 1);
* :mod:`audiograph.samplers` — multi-link and heterogeneous neighbour sampling (stage 2);
* :mod:`audiograph.hgnn` — heterogeneous GraphSAGE, link-prediction training, export (3);
* :mod:`audiograph.twotower` — the user-decoupled two-tower model (stage 4);
* :mod:`audiograph.semantic_ids` — Semantic IDs and the generative model (stage 5);
* :mod:`audiograph.pipeline` — configs, the CLI and the end-to-end job.

The main entry points are importable from here (loaded on first use, so ``import
audiograph`` stays cheap): ``build_graph``, ``train_hgnn``, ``export_embeddings``,
``train_twotower``, ``evaluate_run``, ``split_dataset``, ``read_dataset``, ``load_graph``,
``main`` (the CLI).
"""

__version__ = "0.1.0"


def _source_tree() -> None:
    """Make the source tree importable as it stands: in a checkout the stage folders
    (``core/``, ``graphs/``, …) sit beside this folder, not inside it (``pyproject.toml``
    maps them), so ``import audiograph`` run from the repository root, where this folder
    shadows an installed copy, looks for the subpackages there too."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    tree = (root / "pyproject.toml").is_file() and (root / "core" / "__init__.py").is_file()
    if tree and str(root) not in __path__:
        __path__.append(str(root))


_source_tree()

from audiograph.core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__, _names = lazy_exports(
    __name__,
    {
        "ContractError": "audiograph.core.errors",
        "GraphConfig": "audiograph.graphs.config",
        "build_graph": "audiograph.graphs.build",
        "read_dataset": "audiograph.graphs.contract",
        "load_graph": "audiograph.graphs.store",
        "split_dataset": "audiograph.graphs.split",
        "HGNNConfig": "audiograph.hgnn.config",
        "train_hgnn": "audiograph.hgnn.train",
        "export_embeddings": "audiograph.hgnn.export",
        "TwoTowerConfig": "audiograph.twotower.config",
        "train_twotower": "audiograph.twotower.train",
        "evaluate_run": "audiograph.twotower.evaluate",
        "main": "audiograph.pipeline.cli",
    },
)
__all__ = ["__version__", *_names]
