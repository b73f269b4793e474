"""Checks that a graph can carry gossip: non-empty, simple, loop-free, (strongly) connected."""

from __future__ import annotations

import networkx as nx

from topology.errors import (
    DirectedGraphError,
    DisconnectedGraph,
    EmptyGraph,
    SelfLoops,
    TopologyError,
)
from topology.graphs import Node

__all__ = ["validate_graph"]


def validate_graph(g: nx.Graph[Node], *, allow_directed: bool = False) -> None:
    """Raise a :class:`~topology.errors.TopologyError` subclass if gossip cannot run on ``g``.

    Directed graphs (for push-sum) must be strongly connected; undirected ones connected.

    >>> validate_graph(nx.cycle_graph(4))
    >>> validate_graph(nx.Graph([(0, 1), (2, 3)]))
    Traceback (most recent call last):
    ...
    topology.errors.DisconnectedGraph: graph is disconnected: 2 components of sizes 2, 2; ...
    """
    if g.number_of_nodes() == 0:
        raise EmptyGraph("graph has no nodes; expected at least one peer")
    if g.is_multigraph():
        raise TopologyError(
            f"{type(g).__name__} has parallel edges; expected a simple graph (nx.Graph)"
        )
    if g.is_directed() and not allow_directed:
        raise DirectedGraphError(
            "graph is directed; expected an undirected graph (use rule 'push_sum' for directed)"
        )
    loops = list(nx.selfloop_edges(g))
    if loops:
        shown = ", ".join(repr(u) for u, _ in loops[:5]) + (", ..." if len(loops) > 5 else "")
        raise SelfLoops(
            f"graph has {len(loops)} self-loop(s) at node(s) {shown}; "
            "expected none (self weights come from the mixing rule)"
        )
    if isinstance(g, nx.DiGraph):
        if not nx.is_strongly_connected(g):
            sizes = [len(c) for c in nx.strongly_connected_components(g)]
            raise DisconnectedGraph(sizes, strongly=True)
    elif not nx.is_connected(g):
        raise DisconnectedGraph([len(c) for c in nx.connected_components(g)])
