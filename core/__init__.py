"""Shared helpers every stage uses (not a stage): one-line errors, atomic outputs and run
directories, the artifact formats and their kind check, progress, the text encoder, the
ANN index and shared types."""

from audiograph.core.errors import ContractError
from audiograph.core.formats import FORMATS, check_kind
from audiograph.core.types import EdgeType, NodeType

__all__ = ["FORMATS", "ContractError", "EdgeType", "NodeType", "check_kind"]
