"""Types shared by every stage (one definition each)."""

from __future__ import annotations

EdgeType = tuple[str, str, str]
"""A co-interaction edge type ``(source item type, "co", destination item type)``."""

NodeType = str
"""An item type (``track``, ``podcast``, …); the graph's node types are the item types."""

__all__ = ["EdgeType", "NodeType"]
