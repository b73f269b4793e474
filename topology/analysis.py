"""What a researcher asks of a topology first: size, degrees, diameter, spectral gap, rounds.

The exact diameter runs one breadth-first search per node, up to 64 x 64 sources at a time as
bitsets in numpy, so it costs about nodes x arcs x diameter / 64 word operations. :func:`describe`
first takes a double-sweep lower bound (two BFS); when the exact cost would pass
:data:`EXACT_DIAMETER_BUDGET` it reports that bound instead, and says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np

from topology.errors import TopologyError
from topology.graphs import Node
from topology.mixing import IntArray, Rule, mixing_edges
from topology.spectral import Method, consensus_rounds, spectral_gap
from topology.validation import validate_graph

__all__ = [
    "EXACT_DIAMETER_BUDGET",
    "JSON_KEYS",
    "TopologyReport",
    "describe",
    "diameter",
    "diameter_lower_bound",
]

EXACT_DIAMETER_BUDGET = 2 * 10**9
"""Most 64-bit word operations (nodes x arcs x diameter / 64) :func:`describe` spends on it."""

JSON_KEYS = (
    "nodes",
    "edges",
    "min_degree",
    "max_degree",
    "diameter",
    "spectral_gap",
    "consensus_rounds",
)
_GATHER_BYTES = 64 * 2**20
_MAX_WORDS = 64  # sources per batch / 64


@dataclass(frozen=True, kw_only=True)
class TopologyReport:
    """Summary of a graph under a mixing rule; degrees are out-degrees for directed graphs."""

    nodes: int
    edges: int
    min_degree: int
    max_degree: int
    mean_degree: float
    diameter: int
    diameter_exact: bool
    spectral_gap: float
    consensus_rounds: int
    rule: Rule
    eps: float
    directed: bool

    def __post_init__(self) -> None:
        if self.nodes < 1 or not 0 <= self.min_degree <= self.max_degree:
            raise TopologyError(f"inconsistent report: {self}")

    def to_json(self) -> dict[str, int | float]:
        """The JSON-ready summary ``rumor topology --json`` prints: exactly :data:`JSON_KEYS`."""
        values = asdict(self)
        # 12 significant digits: 0.5, not 0.4999999999999999, and tiny gaps stay nonzero.
        values["spectral_gap"] = float(f"{self.spectral_gap:.12g}")
        return {key: values[key] for key in JSON_KEYS}

    def to_text(self) -> str:
        """Aligned human-readable lines, as ``rumor topology`` prints them."""
        bound = "" if self.diameter_exact else " (lower bound: exact is too costly at this size)"
        lines = [
            ("nodes", f"{self.nodes}"),
            ("edges", f"{self.edges}" + (" (directed)" if self.directed else "")),
            (
                "degree",
                f"min {self.min_degree}, max {self.max_degree}, mean {self.mean_degree:.2f}",
            ),
            ("diameter", f"{self.diameter}{bound}"),
            ("spectral gap", f"{self.spectral_gap:.6g} ({self.rule} weights)"),
            (
                "consensus rounds",
                f"{self.consensus_rounds} (to shrink disagreement by {self.eps:g})",
            ),
        ]
        return "\n".join(f"{key:<17}{value}" for key, value in lines)

    def dumps(self) -> str:
        """:meth:`to_json` as a JSON string."""
        return json.dumps(self.to_json())


def _arcs(g: nx.Graph[Node]) -> tuple[IntArray, IntArray, int]:
    """Directed arcs (both ways for undirected graphs) as index arrays, sorted by head."""
    edges = mixing_edges(g, rule="push_sum")
    return edges.src, edges.dst, edges.n


def diameter(g: nx.Graph[Node]) -> int:
    """Exact diameter (longest shortest path, following arc directions) of a connected graph.

    >>> diameter(nx.cycle_graph(9)), diameter(nx.path_graph(5)), diameter(nx.empty_graph(1))
    (4, 4, 0)
    """
    validate_graph(g, allow_directed=True)
    src, dst, n = _arcs(g)
    if n == 1:
        return 0
    starts = np.searchsorted(dst, np.arange(n))
    words = max(1, min(_MAX_WORDS, _GATHER_BYTES // (8 * max(len(src), 1)), math.ceil(n / 64)))
    longest = 0
    for first in range(0, n, 64 * words):
        sources = np.arange(first, min(n, first + 64 * words))
        visited = np.zeros((n, words), dtype=np.uint64)
        bits = np.left_shift(np.uint64(1), ((sources - first) % 64).astype(np.uint64))
        visited[sources, (sources - first) // 64] = bits
        frontier, level = visited.copy(), 0
        while True:
            # A node is reached from every source whose frontier holds one of its in-neighbours.
            reached = np.bitwise_or.reduceat(frontier[src], starts, axis=0)
            frontier = reached & ~visited
            if not frontier.any():
                break
            visited |= frontier
            level += 1
        longest = max(longest, level)
    return longest


def diameter_lower_bound(g: nx.Graph[Node], *, seed: int = 0) -> int:
    """Double-sweep lower bound on the diameter: a few BFS, fine for millions of nodes.

    >>> diameter_lower_bound(nx.path_graph(7))
    6
    """
    validate_graph(g, allow_directed=True)
    if g.number_of_nodes() == 1:
        return 0
    return int(nx.approximation.diameter(g, seed=seed))


def describe(
    g: nx.Graph[Node], *, rule: Rule | None = None, eps: float = 1e-3, method: Method = "auto"
) -> TopologyReport:
    """Validate ``g`` and summarise it; ``rule`` defaults to metropolis (push_sum if directed).

    >>> report = describe(nx.hypercube_graph(3))
    >>> report.to_json()  # doctest: +NORMALIZE_WHITESPACE
    {'nodes': 8, 'edges': 12, 'min_degree': 3, 'max_degree': 3, 'diameter': 3,
     'spectral_gap': 0.5, 'consensus_rounds': 14}
    """
    validate_graph(g, allow_directed=True)
    directed = g.is_directed()
    chosen: Rule = rule or ("push_sum" if directed else "metropolis")
    view = g.out_degree if isinstance(g, nx.DiGraph) else g.degree
    degrees = np.array([d for _, d in view])
    arcs = g.number_of_edges() * (1 if directed else 2)
    bound = diameter_lower_bound(g)
    exact = g.number_of_nodes() * arcs * bound <= 64 * EXACT_DIAMETER_BUDGET
    rho = spectral_gap(g, rule=chosen, method=method)
    return TopologyReport(
        nodes=g.number_of_nodes(),
        edges=g.number_of_edges(),
        min_degree=int(degrees.min()),
        max_degree=int(degrees.max()),
        mean_degree=float(degrees.mean()),
        diameter=diameter(g) if exact else bound,
        diameter_exact=exact,
        spectral_gap=rho,
        consensus_rounds=consensus_rounds(rho, eps) if g.number_of_nodes() > 1 else 0,
        rule=chosen,
        eps=eps,
        directed=directed,
    )
