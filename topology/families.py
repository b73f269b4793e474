"""Graph families, one function each, nodes ``0..n-1``; random ones take a keyword-only ``seed``.

Every function returns a connected graph (or raises :class:`~topology.errors.TopologyError`), so
gossip reaches every peer. The named lookup over these functions is :mod:`topology.named`.
"""

from __future__ import annotations

import math

import networkx as nx

from topology.errors import TopologyError

__all__ = [
    "complete",
    "dumbbell",
    "erdos_renyi",
    "exponential",
    "hypercube",
    "random_regular",
    "ring",
    "scale_free",
    "small_world",
    "star",
    "torus",
]

_MAX_ATTEMPTS = 100


def _check_n(n: int, minimum: int = 1) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise TopologyError(f"number of nodes must be an integer >= {minimum}, got {n!r}")


def ring(n: int) -> nx.Graph[int]:
    """Cycle 0-1-...-(n-1)-0; with fewer than 3 nodes, the path on them.

    >>> sorted(ring(4).edges())
    [(0, 1), (0, 3), (1, 2), (2, 3)]
    """
    _check_n(n)
    g: nx.Graph[int] = nx.cycle_graph(n) if n >= 3 else nx.path_graph(n)
    return g


def torus(n: int, *, rows: int | None = None) -> nx.Graph[int]:
    """2D periodic grid of ``rows`` x ``n // rows`` (square by default); node r*cols + c.

    >>> g = torus(16)
    >>> sorted(g[0]), {d for _, d in g.degree()}
    ([1, 3, 4, 12], {4})
    """
    _check_n(n)
    if rows is None:
        rows = math.isqrt(n)
        if rows * rows != n:
            raise TopologyError(f"torus: n = {n} is not a perfect square; pass rows=R with R | n")
    if rows < 3 or n % rows or n // rows < 3:
        raise TopologyError(
            f"torus: need rows >= 3 dividing n with n/rows >= 3; got n={n}, {rows=}"
        )
    cols = n // rows
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(n))
    for r in range(rows):
        for c in range(cols):
            g.add_edge(r * cols + c, r * cols + (c + 1) % cols)
            g.add_edge(r * cols + c, ((r + 1) % rows) * cols + c)
    return g


def complete(n: int) -> nx.Graph[int]:
    """Every pair of nodes joined: one round of averaging is exact.

    >>> complete(5).number_of_edges()
    10
    """
    _check_n(n)
    g: nx.Graph[int] = nx.complete_graph(n)
    return g


def star(n: int) -> nx.Graph[int]:
    """Node 0 joined to all others: the centralised (parameter-server) baseline.

    >>> sorted(d for _, d in star(5).degree())
    [1, 1, 1, 1, 4]
    """
    _check_n(n)
    g: nx.Graph[int] = nx.star_graph(n - 1) if n > 1 else nx.empty_graph(1)
    return g


def dumbbell(n: int) -> nx.Graph[int]:
    """Two cliques, nodes ``0..n//2-1`` and the rest, joined by the one edge ``(n//2 - 1, n//2)``.

    A bottleneck that robust aggregation is known to break: the two bridge peers each see one
    neighbour from the other side among many from their own, so rules that discard outliers
    discard the other side too. n >= 4 (two cliques of at least two nodes).

    >>> g = dumbbell(6)
    >>> g.number_of_edges(), sorted(g[2]), sorted(d for _, d in g.degree())
    (7, [0, 1, 3], [2, 2, 2, 2, 3, 3])
    """
    _check_n(n, 4)
    half = n // 2
    g: nx.Graph[int] = nx.complete_graph(half)
    g.add_edges_from((i, j) for i in range(half, n) for j in range(i + 1, n))
    g.add_nodes_from(range(half, n))
    g.add_edge(half - 1, half)
    return g


def hypercube(n: int) -> nx.Graph[int]:
    """Nodes are ``log2 n``-bit numbers joined when they differ in one bit; n a power of two.

    >>> sorted(hypercube(8)[0])
    [1, 2, 4]
    """
    _check_n(n)
    if n & (n - 1):
        raise TopologyError(f"hypercube: n = {n} is not a power of two")
    g: nx.Graph[int] = nx.empty_graph(n)
    g.add_edges_from((i, i ^ (1 << b)) for i in range(n) for b in range(n.bit_length() - 1))
    return g


def random_regular(n: int, *, d: int = 4, seed: int = 0) -> nx.Graph[int]:
    """Uniform random d-regular graph, resampled until connected: an expander with high probability.

    >>> g = random_regular(20, d=3, seed=1)
    >>> {deg for _, deg in g.degree()}, nx.is_connected(g)
    ({3}, True)
    """
    _check_n(n, 2)
    if not 1 <= d < n or (n * d) % 2:
        raise TopologyError(f"random_regular: need 1 <= d < n and n*d even; got n={n}, d={d}")
    for attempt in range(_MAX_ATTEMPTS):
        g: nx.Graph[int] = nx.random_regular_graph(d, n, seed=seed * _MAX_ATTEMPTS + attempt)
        if nx.is_connected(g):
            return g
    raise TopologyError(
        f"random_regular: no connected graph with n={n}, d={d} in {_MAX_ATTEMPTS} tries"
    )


def erdos_renyi(n: int, *, p: float | None = None, seed: int = 0) -> nx.Graph[int]:
    """G(n, p), resampled until connected; ``p`` defaults to twice the threshold ln(n)/n.

    >>> g = erdos_renyi(30, p=0.3, seed=2)
    >>> g.number_of_nodes(), nx.is_connected(g)
    (30, True)
    """
    _check_n(n)
    threshold = math.log(n) / n if n > 1 else 1.0
    p = min(1.0, 2 * threshold) if p is None else p
    if not 0 < p <= 1:
        raise TopologyError(f"erdos_renyi: p must be in (0, 1], got {p}")
    for attempt in range(_MAX_ATTEMPTS):
        g: nx.Graph[int] = nx.gnp_random_graph(n, p, seed=seed * _MAX_ATTEMPTS + attempt)
        if nx.is_connected(g):
            return g
    raise TopologyError(
        f"erdos_renyi: no connected G(n={n}, p={p}) in {_MAX_ATTEMPTS} tries; "
        f"expected p well above the connectivity threshold ln(n)/n = {threshold:.4g}"
    )


def small_world(n: int, *, k: int = 4, p: float = 0.1, seed: int = 0) -> nx.Graph[int]:
    """Watts-Strogatz: a ring lattice with k neighbours, each edge rewired with probability p.

    >>> g = small_world(20, k=4, p=0.2, seed=3)
    >>> g.number_of_edges(), nx.is_connected(g)
    (40, True)
    """
    _check_n(n)
    if not 2 <= k < n or k % 2 or not 0 <= p <= 1:
        raise TopologyError(
            f"small_world: need even 2 <= k < n and 0 <= p <= 1; got {n=}, {k=}, {p=}"
        )
    try:
        g: nx.Graph[int] = nx.connected_watts_strogatz_graph(
            n, k, p, tries=_MAX_ATTEMPTS, seed=seed
        )
    except nx.NetworkXError as exc:
        raise TopologyError(f"small_world: {exc} (n={n}, k={k}, p={p})") from exc
    return g


def scale_free(n: int, *, m: int = 2, seed: int = 0) -> nx.Graph[int]:
    """Barabasi-Albert preferential attachment, m edges per new node: hubs and a long tail.

    >>> g = scale_free(50, m=2, seed=4)
    >>> g.number_of_edges(), nx.is_connected(g)
    (96, True)
    """
    _check_n(n, 2)
    if not 1 <= m < n:
        raise TopologyError(f"scale_free: need 1 <= m < n; got n={n}, m={m}")
    g: nx.Graph[int] = nx.barabasi_albert_graph(n, m, seed=seed)
    return g


def exponential(n: int, *, directed: bool = False) -> nx.Graph[int]:
    """Static exponential graph: i -> i + 2^k (mod n) for 2^k < n (Ying et al. 2021).

    Undirected by default (for Metropolis-Hastings weights); ``directed=True`` gives the original
    digraph, every node with out-degree ceil(log2 n), for push-sum weights.

    >>> sorted(exponential(8, directed=True)[0])
    [1, 2, 4]
    >>> sorted(exponential(8)[0])
    [1, 2, 4, 6, 7]
    """
    _check_n(n)
    g: nx.Graph[int] = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(range(n))
    hops = [1 << k for k in range((n - 1).bit_length())] if n > 1 else []
    g.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops)
    return g
