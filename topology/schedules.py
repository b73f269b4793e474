"""Time-varying topologies: a schedule maps a round number to that round's graph and weights.

- :class:`StaticSchedule`: the same graph every round (weights computed once, cached).
- :class:`OnePeerExponential` (Ying et al. 2021): in round k node i sends to i + 2^(k mod tau),
  tau = ceil(log2 n), and keeps half its value; for n a power of two the average is exact after
  tau rounds, with one message per node per round.
- :class:`RandomMatching`: a random matching per round (seeded by seed and round, so any round
  can be recomputed anywhere); matched pairs average (weight 1/2 each), unmatched nodes keep
  their value.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Protocol, runtime_checkable

import networkx as nx
import numpy as np

from protocol.spec import Spec, parse_spec
from topology.errors import TopologyError
from topology.mixing import MixingEdges, Rule, mixing_edges
from topology.named import FAMILIES, build_graph
from topology.validation import validate_graph

__all__ = [
    "SCHEDULES",
    "OnePeerExponential",
    "RandomMatching",
    "Schedule",
    "StaticSchedule",
    "schedule_from_spec",
]


@runtime_checkable
class Schedule(Protocol):
    """The graph, and the mixing weights, of every round; nodes are ``0..n-1``."""

    @property
    def n(self) -> int:
        """Number of nodes."""
        ...

    def graph_at(self, round: int) -> nx.Graph[int]:
        """The communication graph of ``round`` (directed where messages go one way)."""
        ...

    def edges_at(self, round: int) -> MixingEdges:
        """The mixing weights of ``round``."""
        ...


def _check_round(round: int) -> None:
    if isinstance(round, bool) or not isinstance(round, int) or round < 0:
        raise TopologyError(f"round must be an integer >= 0, got {round!r}")


class StaticSchedule:
    """The same graph and weights every round.

    >>> s = StaticSchedule(nx.cycle_graph(4))
    >>> s.n, s.edges_at(7) is s.edges_at(0)
    (4, True)
    """

    def __init__(self, graph: nx.Graph[int], *, rule: Rule = "metropolis") -> None:
        validate_graph(graph, allow_directed=rule == "push_sum")
        if set(graph.nodes) != set(range(len(graph))):
            raise TopologyError(
                "schedule graphs need nodes 0..n-1; relabel with convert_node_labels_to_integers"
            )
        self.graph, self.rule = graph, rule

    @property
    def n(self) -> int:
        return int(self.graph.number_of_nodes())

    def graph_at(self, round: int) -> nx.Graph[int]:
        _check_round(round)
        return self.graph

    @cached_property
    def _edges(self) -> MixingEdges:
        return mixing_edges(self.graph, rule=self.rule)

    def edges_at(self, round: int) -> MixingEdges:
        _check_round(round)
        return self._edges


class OnePeerExponential:
    """Round k: i -> i + 2^(k mod tau), weights 1/2 self and 1/2 the one in-neighbour.

    >>> s = OnePeerExponential(8)
    >>> s.period, sorted(s.graph_at(2).edges())[:2]
    (3, [(0, 4), (1, 5)])
    """

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise TopologyError(f"one_peer_exponential: n must be an integer >= 1, got {n!r}")
        self._n = n
        self.period = max(1, math.ceil(math.log2(n))) if n > 1 else 1
        self._cache: dict[int, MixingEdges] = {}

    @property
    def n(self) -> int:
        return self._n

    def hop(self, round: int) -> int:
        """The offset 2^(round mod tau) every node sends over in ``round`` (0 when n = 1)."""
        _check_round(round)
        return (1 << (round % self.period)) % self._n

    def graph_at(self, round: int) -> nx.Graph[int]:
        g: nx.DiGraph[int] = nx.DiGraph()
        g.add_nodes_from(range(self._n))
        hop = self.hop(round)
        if hop:
            g.add_edges_from((i, (i + hop) % self._n) for i in range(self._n))
        return g

    def edges_at(self, round: int) -> MixingEdges:
        hop = self.hop(round)
        if hop not in self._cache:  # one entry per distinct hop: tau of them
            src = np.arange(self._n) if hop else np.arange(0)
            dst = (src + hop) % self._n
            order = np.argsort(dst)
            self._cache[hop] = MixingEdges(
                nodes=tuple(range(self._n)),
                src=src[order],
                dst=dst[order],
                weight=np.full(len(src), 0.5),
                self_weight=np.full(self._n, 0.5 if hop else 1.0),
            )
        return self._cache[hop]


class RandomMatching:
    """A random matching of ``base`` (default: complete graph) per round, seeded by (seed, round).

    >>> s = RandomMatching(6, seed=1)
    >>> [d for _, d in s.graph_at(3).degree()]
    [1, 1, 1, 1, 1, 1]
    """

    def __init__(self, n: int, *, seed: int = 0, base: nx.Graph[int] | None = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise TopologyError(f"random_matching: n must be an integer >= 1, got {n!r}")
        if base is not None:
            validate_graph(base)
            if set(base.nodes) != set(range(n)):
                raise TopologyError(f"random_matching: base graph must have nodes 0..{n - 1}")
        self._n, self.seed, self.base = n, seed, base
        self._base_edges = None if base is None else np.array(sorted(base.edges()), dtype=np.int64)

    @property
    def n(self) -> int:
        return self._n

    def pairs_at(self, round: int) -> list[tuple[int, int]]:
        """The matched pairs of ``round``, each as (smaller, larger)."""
        _check_round(round)
        rng = np.random.default_rng([self.seed, round])
        if self._base_edges is None:
            perm = rng.permutation(self._n)
            return [
                (int(min(a, b)), int(max(a, b)))
                for a, b in zip(perm[0::2], perm[1::2], strict=False)
            ]
        matched = np.zeros(self._n, dtype=bool)
        pairs = []
        for a, b in self._base_edges[rng.permutation(len(self._base_edges))]:
            if not matched[a] and not matched[b]:  # greedy over shuffled edges: a maximal matching
                matched[a] = matched[b] = True
                pairs.append((int(a), int(b)))
        return pairs

    def graph_at(self, round: int) -> nx.Graph[int]:
        g: nx.Graph[int] = nx.Graph()
        g.add_nodes_from(range(self._n))
        g.add_edges_from(self.pairs_at(round))
        return g

    def edges_at(self, round: int) -> MixingEdges:
        pairs = np.array(self.pairs_at(round), dtype=np.int64).reshape(-1, 2)
        own = np.ones(self._n)
        own[pairs.ravel()] = 0.5
        src = np.concatenate([pairs[:, 0], pairs[:, 1]])
        dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
        order = np.argsort(dst)
        return MixingEdges(
            nodes=tuple(range(self._n)),
            src=src[order],
            dst=dst[order],
            weight=np.full(len(src), 0.5),
            self_weight=own,
        )


SCHEDULES = ("one_peer_exponential", "random_matching", "<family> (static)")


def schedule_from_spec(
    spec: str | Spec, n: int, *, seed: int = 0, rule: Rule = "metropolis"
) -> Schedule:
    """``one_peer_exponential``, ``random_matching[:base=FAMILY]``, or any family (static).

    >>> type(schedule_from_spec("random_regular:d=4", 10)).__name__
    'StaticSchedule'
    >>> schedule_from_spec("random_matching:base=ring", 8, seed=3).base.number_of_edges()
    8
    """
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.name == "one_peer_exponential":
        _expect(parsed)
        return OnePeerExponential(n)
    if parsed.name == "random_matching":
        _expect(parsed, "base", "seed")
        base_name = parsed.params.get("base")
        seed = int(parsed.params.get("seed", seed))
        base = None if base_name is None else build_graph(str(base_name), n, seed=seed)
        return RandomMatching(n, seed=seed, base=base)
    if parsed.name in FAMILIES:
        return StaticSchedule(build_graph(parsed, n, seed=seed), rule=rule)
    accepted = ", ".join([*SCHEDULES[:2], *FAMILIES])
    raise TopologyError(f"unknown schedule {parsed.name!r}; accepted: {accepted}")


def _expect(spec: Spec, *allowed: str) -> None:
    unknown = sorted(set(spec.params) - set(allowed))
    if unknown:
        raise TopologyError(
            f"{spec.name}: unknown parameter(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(allowed) or 'none'}"
        )
