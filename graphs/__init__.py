"""Stage 1: catalog data contract, text featurization and the co-interaction graph."""

from graphs.contract import Dataset, read_dataset, write_dataset
from graphs.errors import ContractError

__all__ = ["ContractError", "Dataset", "read_dataset", "write_dataset"]
