"""Errors for graphs that rumor cannot use. A bad graph is bad input: the CLI exits with status 2.

::

    ConfigError (protocol.errors)
    └── TopologyError           unknown family, bad parameter, unreadable file, unusable graph
        ├── EmptyGraph          the graph has no nodes
        ├── SelfLoops           an edge joins a node to itself (mixing gives it a self weight)
        ├── DisconnectedGraph   more than one component; ``sizes`` holds their sizes, largest first
        └── DirectedGraphError  directed where undirected is needed, or the reverse
"""

from __future__ import annotations

from collections.abc import Sequence

from protocol.errors import ConfigError

__all__ = [
    "DirectedGraphError",
    "DisconnectedGraph",
    "EmptyGraph",
    "SelfLoops",
    "TopologyError",
]


class TopologyError(ConfigError):
    """A topology name, parameter, file or graph cannot be used."""


class EmptyGraph(TopologyError):
    """The graph has no nodes."""


class SelfLoops(TopologyError):
    """The graph has edges from a node to itself."""


class DisconnectedGraph(TopologyError):
    """The graph falls apart into components, so gossip cannot reach every peer."""

    def __init__(self, sizes: Sequence[int], *, strongly: bool = False) -> None:
        self.sizes = tuple(sorted(sizes, reverse=True))
        shown = ", ".join(map(str, self.sizes[:10])) + (", ..." if len(self.sizes) > 10 else "")
        kind = "strongly connected components" if strongly else "components"
        super().__init__(
            f"graph is disconnected: {len(self.sizes)} {kind} of sizes {shown}; "
            "expected one connected graph so gossip reaches every peer"
        )


class DirectedGraphError(TopologyError):
    """A directed graph where an undirected one is needed (or the other way round)."""
