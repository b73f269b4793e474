"""Who a peer listens to, and with which weights: from a named family, a graph file or the live set.

Weights are Metropolis-Hastings (:func:`topology.mixing_edges`), so peer ``i`` of a family graph
mixes exactly as row ``i`` of the simulator's matrix. In a family graph, node ``j``'s peer id is
the peer's own id with its trailing number replaced by ``j``, in plain decimal (``p10`` at node 10
expects ``p9`` and ``p11``: the names ``rumor up`` gives, :func:`protocol.topics.peer_name`), or
zero-padded to the same width when this peer's number has a leading zero (``pi-03`` expects
``pi-00`` .. ``pi-07``). A padded swarm must therefore pad every number, the highest included.
In a graph file, node names are peer ids.

>>> hood = family_neighbourhood("ring", 4, me="p1", node=1, seed=0)
>>> sorted(hood.weights.items()), hood.index, hood.size
([('p0', 0.3333333333333333), ('p2', 0.3333333333333333)], 1, 4)
>>> node_name("peer-07", 7, 12), node_name("p10", 10, 9), node_name("p010", 10, 9)
('peer-12', 'p9', 'p009')
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from peer.config import TopologyConfig
from protocol.errors import ConfigError
from protocol.types import PeerId
from topology import build_graph, load_graph, membership_graph, mixing_edges, validate_graph

__all__ = [
    "MEMBERSHIP_FAMILY",
    "Neighbourhood",
    "family_neighbourhood",
    "file_neighbourhood",
    "membership_neighbourhood",
    "node_name",
    "static_neighbourhood",
]

MEMBERSHIP_FAMILY = "hashed_rings:k=2"
"""Membership graphs: the union of two rings over seeded hashes of the ids (degree <= 4)."""
_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")


@dataclass(frozen=True, kw_only=True)
class Neighbourhood:
    """This peer's position in the graph and its in-neighbours' mixing weights."""

    me: PeerId
    index: int
    """Position of this peer in the graph's node order (its default partition index)."""
    size: int
    weights: Mapping[PeerId, float] = field(default_factory=dict)
    """In-neighbour -> weight, in node order."""

    @property
    def neighbours(self) -> frozenset[PeerId]:
        return frozenset(self.weights)


def node_name(me: PeerId, node: int, other: int) -> PeerId:
    """The peer id of node ``other`` in a family graph, from this peer's id and node."""
    match = _TRAILING_NUMBER.match(me)
    if match is None or int(match[2]) != node:
        raise ConfigError(
            f"identity.peer = {me!r}: with a topology family the peer id must end with its node "
            f"number {node} (e.g. 'peer-{node}'), so that peers can name each other"
        )
    digits = match[2]
    padded = len(digits) > 1 and digits.startswith("0")
    return f"{match[1]}{other:0{len(digits) if padded else 1}d}"


def _from_graph(
    graph: nx.Graph[Hashable], me_node: Hashable, names: Mapping[Hashable, PeerId], me: PeerId
) -> Neighbourhood:
    edges = mixing_edges(graph)
    index = edges.nodes.index(me_node)
    weights = {
        names[edges.nodes[int(s)]]: float(w)
        for s, d, w in zip(edges.src, edges.dst, edges.weight, strict=True)
        if int(d) == index
    }
    return Neighbourhood(me=me, index=index, size=edges.n, weights=weights)


def family_neighbourhood(
    family: str, size: int, *, me: PeerId, node: int, seed: int
) -> Neighbourhood:
    """Peer ``me`` at ``node`` of the named family on ``size`` nodes."""
    if not 0 <= node < size:
        raise ConfigError(f"topology.node = {node}: expected 0 to {size - 1}")
    graph = build_graph(family, size, seed=seed)
    names = {j: node_name(me, node, j) for j in range(size)}
    return _from_graph(graph, node, names, me)  # type: ignore[arg-type]


def file_neighbourhood(
    graph: nx.Graph[Hashable], *, me: PeerId, node: int | str | None
) -> Neighbourhood:
    """Peer ``me`` in a graph read from a file: its node is ``node`` (name or index) or ``me``."""
    validate_graph(graph)
    order = sorted(graph.nodes, key=str)
    names = {n: str(n) for n in order}
    if isinstance(node, int):
        if not 0 <= node < len(order):
            raise ConfigError(f"topology.node = {node}: expected 0 to {len(order) - 1}")
        me_node = order[node]
    else:
        wanted = me if node is None else node
        found = [n for n in order if str(n) == wanted]
        if not found:
            raise ConfigError(
                f"topology.node = {wanted!r}: not a node of the graph file; nodes: "
                f"{', '.join(map(str, order[:10]))}{' ...' if len(order) > 10 else ''}"
            )
        me_node = found[0]
    relabelled = nx.relabel_nodes(graph, names)
    return _from_graph(relabelled, names[me_node], {v: v for v in names.values()}, me)


def membership_neighbourhood(
    live: Iterable[PeerId], *, me: PeerId, seed: int, family: str = MEMBERSHIP_FAMILY
) -> Neighbourhood:
    """Peer ``me`` in the graph every peer derives from the same live set."""
    ids = set(live) | {me}
    graph = membership_graph(ids, family, seed=seed)
    return _from_graph(graph, me, {p: p for p in ids}, me)  # type: ignore[arg-type]


def static_neighbourhood(topology: TopologyConfig, *, me: PeerId) -> Neighbourhood | None:
    """The fixed neighbourhood of a family or file topology; None in membership mode."""
    if topology.membership:
        return None
    if topology.family is not None:
        assert topology.size is not None  # the config validated these
        assert isinstance(topology.node, int)
        return family_neighbourhood(
            topology.family, topology.size, me=me, node=topology.node, seed=topology.seed
        )
    assert topology.file is not None
    return file_neighbourhood(load_graph(topology.file), me=me, node=topology.node)
