from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from topology import families
from topology.errors import TopologyError
from topology.mixing import Rule, mixing_edges, mixing_matrix
from topology.spectral import (
    SpectralNotConverged,
    consensus_rounds,
    extreme_eigenvalues,
    spectral_gap,
)


@pytest.mark.parametrize(("n", "expected"), [(16, 0.0507), (36, 0.0101)])
def test_ring_gap_matches_closed_form(n: int, expected: float) -> None:
    rho = spectral_gap(families.ring(n))
    assert rho == pytest.approx((2 / 3) * (1 - math.cos(2 * math.pi / n)), abs=1e-12)
    assert round(rho, 4) == expected


@pytest.mark.parametrize(("n", "expected"), [(16, 0.4), (36, 0.2)])
def test_torus_gap_matches_closed_form(n: int, expected: float) -> None:
    rho = spectral_gap(families.torus(n))
    assert rho == pytest.approx((2 / 5) * (1 - math.cos(2 * math.pi / math.sqrt(n))), abs=1e-12)
    assert rho == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [2, 5, 17])
def test_complete_graph_gap_is_one_and_averages_in_one_round(n: int) -> None:
    g = families.complete(n)
    assert spectral_gap(g) == pytest.approx(1.0, abs=1e-12)
    x = np.arange(n, dtype=float) ** 2
    assert np.allclose(mixing_matrix(g) @ x, x.mean())


@pytest.mark.parametrize("n", [4, 8, 32, 64])
def test_hypercube_gap(n: int) -> None:
    assert spectral_gap(families.hypercube(n)) == pytest.approx(2 / (math.log2(n) + 1), abs=1e-12)


GRAPHS = {
    "torus": families.torus(400),
    "small_world": families.small_world(400, k=4, p=0.1, seed=1),
    "scale_free": families.scale_free(400, m=2, seed=2),
    "random_regular": families.random_regular(400, d=3, seed=3),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("rule", ["metropolis", "max_degree", "uniform"])
def test_sparse_solver_agrees_with_dense(name: str, rule: Rule) -> None:
    g = GRAPHS[name]
    dense = spectral_gap(g, rule=rule, method="dense")
    assert spectral_gap(g, rule=rule, method="sparse") == pytest.approx(dense, rel=1e-3)


def test_sparse_solver_refuses_a_gap_it_cannot_resolve() -> None:
    # rho of a 1000-ring is 1.3e-5: far below what 60 Lanczos steps can separate.
    edges = mixing_edges(families.ring(1000))
    uniform = np.full(1000, 1 / np.sqrt(1000))
    with pytest.raises(SpectralNotConverged, match="gap is at most"):
        extreme_eigenvalues(edges.apply, 1000, deflate=uniform, max_iter=60)


def test_lanczos_finds_both_extremes_of_a_known_spectrum() -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    values = np.concatenate([[1.0, 0.9, -0.7], rng.uniform(-0.5, 0.6, 297)])
    a = (q * values) @ q.T
    low, high = extreme_eigenvalues(lambda x: a @ x, 300, deflate=q[:, 0])
    assert low == pytest.approx(-0.7, abs=1e-6)
    assert high == pytest.approx(0.9, abs=1e-6)


def test_disconnected_matrix_has_zero_gap() -> None:
    g = nx.disjoint_union(nx.cycle_graph(4), nx.cycle_graph(5))
    assert spectral_gap(mixing_matrix(g)) == pytest.approx(0.0, abs=1e-12)


def test_push_sum_gap_of_directed_exponential_graph() -> None:
    g = families.exponential(8, directed=True)
    w = mixing_edges(g, rule="push_sum").to_dense()
    # Circulant with weights 1/4 on shifts 0, 1, 2, 4: eigenvalues are DFT values of that row.
    k = np.arange(8)
    eig = (1 + sum(np.exp(-2j * np.pi * k * s / 8) for s in (1, 2, 4))) / 4
    expected = 1 - np.sort(np.abs(eig))[-2]
    assert spectral_gap(w) == pytest.approx(expected, abs=1e-12)


def test_consensus_rounds_formula() -> None:
    assert consensus_rounds(0.0507) == math.ceil(math.log(1000) / 0.0507)
    assert consensus_rounds(0.1, eps=0.5) == math.ceil(math.log(2) / 0.1)
    with pytest.raises(TopologyError, match="connected"):
        consensus_rounds(0.0)
    with pytest.raises(TopologyError, match="eps"):
        consensus_rounds(0.5, eps=1.5)


@pytest.mark.slow
def test_spectral_gap_of_10000_node_random_4_regular_graph() -> None:
    g = families.random_regular(10_000, d=4, seed=0)
    rho = spectral_gap(g)
    # Friedman: lambda_2(A) -> 2 sqrt(d - 1) for random d-regular graphs, and W = (I + A) / 5.
    ramanujan = 1 - (1 + 2 * math.sqrt(3)) / 5
    assert rho == pytest.approx(ramanujan, abs=0.01)
    assert spectral_gap(mixing_edges(g), method="sparse") == pytest.approx(rho, abs=1e-12)
