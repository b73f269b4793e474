"""Type names shared by the topology modules."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["Node"]

Node = TypeVar("Node", bound=Hashable)
"""A graph's node type: ``int`` for the families, ``str`` (peer ids) for files and membership."""
