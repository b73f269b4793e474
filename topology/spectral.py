"""Spectral gap of a mixing matrix, and the rounds of gossip it predicts.

rho = 1 - max(|lambda_2|, |lambda_N|) for symmetric W (in general: 1 minus the second largest
eigenvalue modulus). Disagreement shrinks roughly by (1 - rho) per round, so about
ln(1/eps) / rho rounds shrink it by a factor eps.

Small graphs use a dense eigensolver. Large ones use Lanczos with full reorthogonalisation on the
sparse W (numpy only, no scipy), restricted to the complement of the known top eigenvector: the
extreme Ritz values there are lambda_2 and lambda_N, which converge first. A 10,000-node
random 4-regular graph takes a second or two.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Literal

import networkx as nx
import numpy as np

from topology.errors import TopologyError
from topology.graphs import Node
from topology.mixing import FloatArray, MixingEdges, Rule, is_symmetric, mixing_edges

__all__ = [
    "DENSE_FALLBACK",
    "DENSE_LIMIT",
    "SpectralNotConverged",
    "consensus_rounds",
    "extreme_eigenvalues",
    "spectral_gap",
]

DENSE_LIMIT = 1500
"""Up to this many nodes, ``method="auto"`` uses the dense eigensolver."""

DENSE_FALLBACK = 6000
"""Up to this many nodes, ``method="auto"`` falls back to dense when Lanczos cannot converge
(gaps below about 1e-5, as in long rings); beyond it :class:`SpectralNotConverged` is raised."""

Method = Literal["auto", "dense", "sparse"]
MatVec = Callable[[FloatArray], FloatArray]


log = logging.getLogger(__name__)


class SpectralNotConverged(TopologyError):
    """The sparse eigensolver could not resolve a very small spectral gap."""


def consensus_rounds(rho: float, eps: float = 1e-3) -> int:
    """Predicted gossip rounds to shrink disagreement by ``eps``: ceil(ln(1/eps) / rho).

    >>> consensus_rounds(0.5), consensus_rounds(1.0, eps=0.01)
    (14, 5)
    """
    if not 0 < eps < 1:
        raise TopologyError(f"eps must be in (0, 1), got {eps}")
    if not 0 < rho <= 1 + 1e-12:
        raise TopologyError(f"spectral gap must be in (0, 1], got {rho}: is the graph connected?")
    return math.ceil(math.log(1 / eps) / min(rho, 1.0) - 1e-9)


def extreme_eigenvalues(
    matvec: MatVec,
    n: int,
    *,
    deflate: FloatArray | None = None,
    rtol: float = 1e-4,
    max_iter: int = 400,
    seed: int = 0,
) -> tuple[float, float]:
    """(smallest, largest) eigenvalue of a symmetric operator on the complement of ``deflate``.

    Lanczos with full reorthogonalisation; ``deflate`` is a unit vector (an eigenvector) kept out
    of the Krylov space. Converged when the residual of the extreme Ritz pair of largest modulus
    is below ``rtol`` times the gap 1 - |theta| it implies (ARPACK's test, relative to rho);
    raises :class:`SpectralNotConverged` after ``max_iter`` steps otherwise.

    >>> a = np.diag([1.0, 0.5, -0.25, 0.1])
    >>> [round(v, 6) for v in extreme_eigenvalues(lambda x: a @ x, 4, deflate=np.eye(4)[0])]
    [-0.25, 0.5]
    """
    fixed = np.zeros((0, n)) if deflate is None else deflate.reshape(1, n)
    size = n - len(fixed)
    basis = np.zeros((min(max_iter, size), n))
    q = np.random.default_rng(seed).standard_normal(n)
    q -= fixed.T @ (fixed @ q)
    alphas: list[float] = []
    betas: list[float] = [float(np.linalg.norm(q))]
    for k in range(len(basis)):
        basis[k] = q = q / betas[-1]
        w = matvec(q)
        alphas.append(float(q @ w))
        for _ in range(2):  # classical Gram-Schmidt twice keeps the basis orthogonal
            w -= basis[: k + 1].T @ (basis[: k + 1] @ w)
            w -= fixed.T @ (fixed @ w)
        betas.append(float(np.linalg.norm(w)))
        if k % 10 == 9 or k == len(basis) - 1 or betas[-1] < 1e-12:
            done, low, high, bound = _ritz_check(alphas, betas[1:], rtol)
            if done or betas[-1] < 1e-12 or k + 1 == size:
                return low, high
        q = w
    raise SpectralNotConverged(
        f"Lanczos did not converge in {len(basis)} steps: the spectral gap is at most {bound:.3g} "
        "(too small for the sparse solver); use the dense one (rumor topology --method dense)"
    )


def _ritz_check(
    alphas: list[float], betas: list[float], rtol: float
) -> tuple[bool, float, float, float]:
    """Whether the Ritz pair deciding rho converged; the extreme Ritz values; 1 - |theta|."""
    k = len(alphas)
    t = np.diag(alphas) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    theta, s = np.linalg.eigh(t)
    residual = np.abs(betas[k - 1] * s[-1, [0, -1]])
    moduli = np.abs(theta[[0, -1]])
    top = int(np.argmax(moduli))
    gap = max(1 - float(moduli[top]), 0.0)
    # The other extreme must not be able to overtake the dominant one within its residual.
    other_ok = moduli[1 - top] + residual[1 - top] <= moduli[top] + rtol * gap
    return bool(residual[top] <= rtol * gap and other_ok), float(theta[0]), float(theta[-1]), gap


def _symmetric_operator(
    w: nx.Graph[Node] | MixingEdges, rule: Rule
) -> tuple[MixingEdges, FloatArray]:
    """A symmetric operator similar to W and its top eigenvector (for deflation)."""
    edges = mixing_edges(w, rule=rule) if isinstance(w, nx.Graph) else w
    if is_symmetric(edges):
        return edges, np.full(edges.n, 1 / math.sqrt(edges.n))
    if isinstance(w, nx.Graph) and rule == "uniform":
        # W = D^-1 (A + I) is reversible with pi ~ deg + 1: S = D^1/2 W D^-1/2 is symmetric.
        root = np.sqrt(1 / edges.self_weight)
        scaled = edges.weight * root[edges.dst] / root[edges.src]
        sym = MixingEdges(
            nodes=edges.nodes,
            src=edges.src,
            dst=edges.dst,
            weight=scaled,
            self_weight=edges.self_weight,
        )
        return sym, root / np.linalg.norm(root)
    raise TopologyError(
        "sparse spectral gap needs symmetric weights (or an undirected graph with rule 'uniform'); "
        "use method='dense' for this W"
    )


def _dense_gap(w: FloatArray) -> float:
    if w.shape[0] == 1:
        return 1.0
    if np.allclose(w, w.T, rtol=0, atol=1e-12):
        values = np.abs(np.linalg.eigvalsh(w))
    else:
        values = np.abs(np.linalg.eigvals(w))
    return float(np.clip(1 - np.sort(values)[-2], 0.0, 1.0))


def spectral_gap(
    w: FloatArray | nx.Graph[Node] | MixingEdges,
    *,
    rule: Rule = "metropolis",
    method: Method = "auto",
    max_iter: int = 400,
) -> float:
    """rho = 1 - (second largest eigenvalue modulus of W); 0 for a disconnected graph.

    ``w`` is a dense matrix, sparse :class:`MixingEdges`, or a graph (weighted by ``rule``).
    ``max_iter`` bounds the sparse solver's Lanczos steps (its memory and time grow with it).

    >>> round(spectral_gap(nx.cycle_graph(16)), 4), round(spectral_gap(nx.complete_graph(5)), 12)
    (0.0507, 1.0)
    """
    if method not in ("auto", "dense", "sparse"):
        raise TopologyError(f"unknown method {method!r}; accepted: auto, dense, sparse")
    if isinstance(w, np.ndarray):
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise TopologyError(f"expected a square matrix, got shape {w.shape}")
        return _dense_gap(w.astype(np.float64))
    n = w.number_of_nodes() if isinstance(w, nx.Graph) else w.n
    if method == "dense" or (method == "auto" and n <= DENSE_LIMIT):
        edges = mixing_edges(w, rule=rule) if isinstance(w, nx.Graph) else w
        return _dense_gap(edges.to_dense())
    operator, top = _symmetric_operator(w, rule)
    try:
        low, high = extreme_eigenvalues(operator.apply, n, deflate=top, max_iter=max_iter)
    except SpectralNotConverged:
        if method == "sparse" or n > DENSE_FALLBACK:
            raise
        log.info("sparse eigensolver cannot resolve the gap of %d nodes; using the dense one", n)
        return spectral_gap(w, rule=rule, method="dense", max_iter=max_iter)
    return max(0.0, 1 - max(abs(low), abs(high)))
