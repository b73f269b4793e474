"""Mixing weights: who averages with whom, and how much.

Convention: ``W[j, i]`` is the weight node j gives to the value it receives from node i, and one
round of gossip is ``x <- W @ x``. Row-stochastic W keeps consensus values fixed; doubly
stochastic W also keeps the average; push-sum (column-stochastic) W keeps the sum.

Rules, with d_i the degree of node i:

- ``metropolis`` (default): w_ij = 1 / (1 + max(d_i, d_j)); symmetric, doubly stochastic.
- ``max_degree``: w_ij = 1 / (1 + max_k d_k); symmetric, doubly stochastic.
- ``uniform``: w_ij = 1 / (1 + d_j) for j's neighbours and itself; row-stochastic only.
- ``push_sum``: sender i splits its value equally over itself and its out-neighbours,
  W[j, i] = 1 / (1 + outdeg_i); column-stochastic, the rule for directed graphs.

:class:`MixingEdges` is the sparse form (one entry per directed edge plus self weights) that the
simulator turns into tensors; :func:`mixing_matrix` is the dense form for small graphs.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import networkx as nx
import numpy as np
import numpy.typing as npt

from topology.errors import DirectedGraphError, EmptyGraph, SelfLoops, TopologyError
from topology.graphs import Node

__all__ = [
    "RULES",
    "FloatArray",
    "IntArray",
    "MixingEdges",
    "Rule",
    "is_column_stochastic",
    "is_doubly_stochastic",
    "is_row_stochastic",
    "is_symmetric",
    "mixing_edges",
    "mixing_matrix",
]

Rule = Literal["metropolis", "max_degree", "uniform", "push_sum"]
RULES: tuple[Rule, ...] = get_args(Rule)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_ATOL = 1e-9


def _frozen(a: npt.ArrayLike, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    out = np.array(a, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class MixingEdges:
    """Sparse mixing weights: ``W[dst[e], src[e]] = weight[e]`` and ``W[j, j] = self_weight[j]``.

    Indices refer to positions in ``nodes``. Arrays are copied and made read-only, so instances
    can be cached and shared.
    """

    nodes: tuple[Hashable, ...]
    src: IntArray
    dst: IntArray
    weight: FloatArray
    self_weight: FloatArray

    def __post_init__(self) -> None:
        for name, dtype in (("src", np.int64), ("dst", np.int64)):
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        for name in ("weight", "self_weight"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        n, e = len(self.nodes), len(self.src)
        if self.dst.shape != (e,) or self.weight.shape != (e,) or self.src.ndim != 1:
            raise TopologyError(
                f"src, dst, weight must be 1-D of one length; got shapes "
                f"{self.src.shape}, {self.dst.shape}, {self.weight.shape}"
            )
        if self.self_weight.shape != (n,):
            raise TopologyError(f"self_weight must have shape ({n},), got {self.self_weight.shape}")
        if e and (
            min(self.src.min(), self.dst.min()) < 0 or max(self.src.max(), self.dst.max()) >= n
        ):
            raise TopologyError(f"edge index out of range 0..{n - 1}")

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    def row_sums(self) -> FloatArray:
        """Total weight each node receives, self included (1 for row-stochastic W)."""
        return self.self_weight + np.bincount(self.dst, self.weight, minlength=self.n)

    def column_sums(self) -> FloatArray:
        """Total weight each node's value gets, self included (1 for column-stochastic W)."""
        return self.self_weight + np.bincount(self.src, self.weight, minlength=self.n)

    def to_dense(self) -> FloatArray:
        """The [n, n] matrix W; for small graphs and tests."""
        w = np.diag(self.self_weight)
        np.add.at(w, (self.dst, self.src), self.weight)
        return w

    def apply(self, x: npt.ArrayLike) -> FloatArray:
        """One gossip round ``W @ x`` for x of shape [n] or [n, p], without a dense W.

        >>> edges = mixing_edges(nx.path_graph(3))
        >>> edges.apply([3.0, 0.0, 0.0]).round(4).tolist()
        [2.0, 1.0, 0.0]
        """
        v = np.asarray(x, dtype=np.float64)
        if v.shape[:1] != (self.n,) or v.ndim > 2:
            raise TopologyError(f"x must have shape [{self.n}] or [{self.n}, p], got {v.shape}")
        if v.ndim == 1:
            return self.self_weight * v + np.bincount(self.dst, self.weight * v[self.src], self.n)
        out = self.self_weight[:, None] * v
        np.add.at(out, self.dst, self.weight[:, None] * v[self.src])
        return out


def _node_order(g: nx.Graph[Node], nodes: Sequence[Node] | None) -> list[Node]:
    if nodes is None:
        try:
            return sorted(g.nodes)  # type: ignore[type-var]
        except TypeError:  # mixed id types do not sort: keep insertion order
            return list(g.nodes)
    order = list(nodes)
    if len(set(order)) != len(order) or set(order) != set(g.nodes):
        raise TopologyError(f"nodes must list each of the graph's {len(g)} nodes exactly once")
    return order


def _check_graph(g: nx.Graph[Node], rule: str) -> None:
    if rule not in RULES:
        raise TopologyError(f"unknown mixing rule {rule!r}; accepted: {', '.join(RULES)}")
    if g.number_of_nodes() == 0:
        raise EmptyGraph("graph has no nodes; expected at least one peer")
    if g.is_multigraph():
        raise TopologyError("graph has parallel edges; expected a simple graph")
    if g.is_directed() and rule != "push_sum":
        raise DirectedGraphError(
            f"rule {rule!r} needs an undirected graph; use 'push_sum' for directed"
        )
    if nx.number_of_selfloops(g):
        raise SelfLoops("graph has self-loops; expected none (self weights come from the rule)")


def mixing_edges(
    g: nx.Graph[Node], *, rule: Rule = "metropolis", nodes: Sequence[Node] | None = None
) -> MixingEdges:
    """Sparse mixing weights of ``g`` under ``rule``, indices in ``nodes`` order (default sorted).

    Edges come sorted by receiver, then sender.

    >>> e = mixing_edges(nx.path_graph(3))
    >>> e.src.tolist(), e.dst.tolist(), e.weight.round(4).tolist(), e.self_weight.round(4).tolist()
    ([1, 0, 2, 1], [0, 1, 1, 2], [0.3333, 0.3333, 0.3333, 0.3333], [0.6667, 0.3333, 0.6667])
    """
    _check_graph(g, rule)
    order = _node_order(g, nodes)
    index = {node: i for i, node in enumerate(order)}
    n = len(order)
    pairs = np.array([(index[u], index[v]) for u, v in g.edges()], dtype=np.int64).reshape(-1, 2)
    u, v = pairs[:, 0], pairs[:, 1]
    if g.is_directed():
        out_deg = np.bincount(u, minlength=n).astype(np.float64)
        return _sorted_edges(tuple(order), u, v, 1 / (1 + out_deg[u]), 1 / (1 + out_deg))
    src, dst = np.concatenate([u, v]), np.concatenate([v, u])
    deg = np.bincount(src, minlength=n).astype(np.float64)
    if rule == "metropolis":
        weight = 1 / (1 + np.maximum(deg[src], deg[dst]))
    elif rule == "max_degree":
        weight = np.full(len(src), 1 / (1 + deg.max(initial=0)))
    elif rule == "uniform":
        weight = 1 / (1 + deg[dst])
    else:  # push_sum on an undirected graph: each edge in both directions
        weight = 1 / (1 + deg[src])
    own = (
        1 / (1 + deg) if rule == "push_sum" else 1 - np.bincount(dst, weight, n).astype(np.float64)
    )
    return _sorted_edges(tuple(order), src, dst, weight, own)


def _sorted_edges(
    nodes: tuple[Hashable, ...], src: IntArray, dst: IntArray, weight: FloatArray, own: FloatArray
) -> MixingEdges:
    # Receiver-major (CSR) order: deterministic, and what segment sums over receivers want.
    order = np.lexsort((src, dst))
    return MixingEdges(
        nodes=nodes, src=src[order], dst=dst[order], weight=weight[order], self_weight=own
    )


def mixing_matrix(
    g: nx.Graph[Node], *, rule: Rule = "metropolis", nodes: Sequence[Node] | None = None
) -> FloatArray:
    """Dense [n, n] float64 mixing matrix of ``g``, rows and columns in ``nodes`` order.

    >>> mixing_matrix(nx.cycle_graph(3)).round(4).tolist()[0]
    [0.3333, 0.3333, 0.3333]
    """
    return mixing_edges(g, rule=rule, nodes=nodes).to_dense()


def _sums_and_min(w: FloatArray | MixingEdges) -> tuple[FloatArray, FloatArray, float]:
    if isinstance(w, MixingEdges):
        low = min(w.weight.min(initial=np.inf), w.self_weight.min(initial=np.inf))
        return w.row_sums(), w.column_sums(), float(low)
    m = np.asarray(w, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise TopologyError(f"expected a square matrix, got shape {m.shape}")
    return m.sum(axis=1), m.sum(axis=0), float(m.min(initial=np.inf))


def is_row_stochastic(w: FloatArray | MixingEdges, *, atol: float = _ATOL) -> bool:
    """Non-negative with every row summing to 1: consensus is a fixed point.

    >>> is_row_stochastic(np.array([[0.5, 0.5], [0.0, 1.0]]))
    True
    """
    rows, _, low = _sums_and_min(w)
    return low >= -atol and bool(np.allclose(rows, 1.0, rtol=0, atol=atol))


def is_column_stochastic(w: FloatArray | MixingEdges, *, atol: float = _ATOL) -> bool:
    """Non-negative with every column summing to 1: the sum is kept (push-sum).

    >>> is_column_stochastic(np.array([[0.5, 0.0], [0.5, 1.0]]))
    True
    """
    _, cols, low = _sums_and_min(w)
    return low >= -atol and bool(np.allclose(cols, 1.0, rtol=0, atol=atol))


def is_doubly_stochastic(w: FloatArray | MixingEdges, *, atol: float = _ATOL) -> bool:
    """Row- and column-stochastic: consensus is fixed and the average is kept.

    >>> is_doubly_stochastic(np.array([[0.5, 0.5], [0.0, 1.0]]))
    False
    """
    return is_row_stochastic(w, atol=atol) and is_column_stochastic(w, atol=atol)


def is_symmetric(w: FloatArray | MixingEdges, *, atol: float = _ATOL) -> bool:
    """W equals its transpose (within ``atol``).

    >>> is_symmetric(mixing_edges(nx.star_graph(3)))
    True
    """
    if not isinstance(w, MixingEdges):
        m = np.asarray(w, dtype=np.float64)
        return (
            m.ndim == 2
            and m.shape[0] == m.shape[1]
            and bool(np.allclose(m, m.T, rtol=0, atol=atol))
        )
    forward, backward = w.dst * w.n + w.src, w.src * w.n + w.dst
    order_f, order_b = np.argsort(forward, kind="stable"), np.argsort(backward, kind="stable")
    return bool(
        np.array_equal(forward[order_f], backward[order_b])
        and np.allclose(w.weight[order_f], w.weight[order_b], rtol=0, atol=atol)
    )
