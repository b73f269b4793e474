"""Membership-driven graphs: every peer derives the same graph from the live set, no coordinator.

Peers are placed on rings in the order of a seeded hash of their ids (blake2b, identical on every
machine and Python process, unlike ``hash()``). ``hashed_rings:k=K`` is the union of K such rings,
each with its own hash: degree at most 2K, and an expander much like a random 2K-regular graph
(it is not one: two rings may share an edge). ``ring`` is ``hashed_rings:k=1``. A join or a
leave only splices one position per ring: at most 3 edges change per ring (two removed and one
added for a leave), whatever the swarm's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import networkx as nx

from protocol.spec import Spec, parse_spec
from topology.errors import EmptyGraph, TopologyError

__all__ = ["MEMBERSHIP_FAMILIES", "membership_graph", "ring_order", "rings_for"]

MEMBERSHIP_FAMILIES = ("ring", "hashed_rings:k=..", "complete")


def ring_order(ids: Iterable[str], *, seed: int, ring: int = 0) -> list[str]:
    """The ids sorted by the 64-bit blake2b hash of ``"{seed}:{ring}:{id}"`` (ties by id).

    >>> ring_order(["a", "b", "c"], seed=0) == ring_order(["c", "a", "b"], seed=0)
    True
    """

    def key(peer: str) -> tuple[bytes, str]:
        digest = hashlib.blake2b(f"{seed}:{ring}:{peer}".encode(), digest_size=8).digest()
        return digest, peer

    return sorted(set(ids), key=key)


def rings_for(family: str | Spec) -> int | None:
    """Number of hashed rings the family is made of, or None for the complete graph.

    >>> rings_for("ring"), rings_for("hashed_rings:k=3"), rings_for("complete")
    (1, 3, None)
    """
    spec = parse_spec(family) if isinstance(family, str) else family
    params = dict(spec.params)
    if spec.name == "complete" and not params:
        return None
    if spec.name == "ring" and not params:
        return 1
    if spec.name == "hashed_rings" and set(params) <= {"k"}:
        k = params.get("k", 2)
        if isinstance(k, int) and not isinstance(k, bool) and k >= 1:
            return k
        raise TopologyError(f"membership hashed_rings: k must be an integer >= 1, got {k!r}")
    raise TopologyError(
        f"membership graphs support {', '.join(MEMBERSHIP_FAMILIES)}; got {str(spec)!r} "
        "(other families would rewire the whole swarm on every join or leave)"
    )


def membership_graph(
    live: Iterable[str], family: str | Spec = "hashed_rings:k=2", *, seed: int = 0
) -> nx.Graph[str]:
    """The graph every peer computes from the same live set and seed, over the peers' ids.

    >>> g = membership_graph(["p3", "p1", "p2", "p0"], "ring", seed=5)
    >>> sorted(g.nodes), sorted(d for _, d in g.degree())
    (['p0', 'p1', 'p2', 'p3'], [2, 2, 2, 2])
    >>> nx.utils.graphs_equal(g, membership_graph(["p0", "p1", "p2", "p3"], "ring", seed=5))
    True
    """
    ids = sorted(set(live))
    if not ids:
        raise EmptyGraph("membership graph of an empty live set; expected at least one peer")
    if any(not isinstance(peer, str) or not peer for peer in ids):
        raise TopologyError(f"peer ids must be non-empty strings, got {ids[:5]!r}")
    rings = rings_for(family)
    g: nx.Graph[str] = nx.Graph()
    g.add_nodes_from(ids)
    if rings is None:
        g.add_edges_from((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
        return g
    for r in range(rings):
        order = ring_order(ids, seed=seed, ring=r)
        if len(order) > 1:
            g.add_edges_from(zip(order, order[1:] + order[:1], strict=True))
    return g
