from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topology import families
from topology.errors import DirectedGraphError, EmptyGraph, SelfLoops, TopologyError
from topology.mixing import (
    MixingEdges,
    Rule,
    is_column_stochastic,
    is_doubly_stochastic,
    is_row_stochastic,
    is_symmetric,
    mixing_edges,
    mixing_matrix,
)


@st.composite
def connected_graphs(draw: st.DrawFn) -> nx.Graph[int]:
    """A random spanning tree (Pruefer-like attachment) plus random extra edges."""
    n = draw(st.integers(min_value=2, max_value=25))
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(n))
    for i in range(1, n):
        g.add_edge(i, draw(st.integers(min_value=0, max_value=i - 1)))
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    g.add_edges_from((u, v) for u, v in draw(st.lists(pairs, max_size=2 * n)) if u != v)
    return g


def _reference_metropolis(g: nx.Graph[int]) -> np.ndarray:
    n = g.number_of_nodes()
    w = np.zeros((n, n))
    for i in range(n):
        for j in g[i]:
            w[i, j] = 1 / (1 + max(g.degree(i), g.degree(j)))
        w[i, i] = 1 - w[i].sum()
    return w


@settings(max_examples=60, deadline=None)
@given(connected_graphs())
def test_metropolis_weights_are_symmetric_doubly_stochastic_and_converge(g: nx.Graph[int]) -> None:
    w = mixing_matrix(g)
    assert np.allclose(w, _reference_metropolis(g))
    assert is_symmetric(w)
    assert is_doubly_stochastic(w)
    assert w.min() >= 0
    edges = mixing_edges(g)
    assert is_symmetric(edges)
    assert is_doubly_stochastic(edges)
    x = np.random.default_rng(g.number_of_nodes()).standard_normal(g.number_of_nodes())
    y = x.copy()
    for _ in range(20):  # each round keeps the mean and never increases disagreement
        z = edges.apply(y)
        assert z.mean() == pytest.approx(x.mean())
        assert np.sum((z - x.mean()) ** 2) <= np.sum((y - x.mean()) ** 2) + 1e-12
        y = z
    # 2^20 rounds by repeated squaring: even a 25-node path (rho ~ 2.6e-3) has converged.
    assert np.allclose(np.linalg.matrix_power(w, 2**20) @ x, x.mean(), atol=1e-9)


@pytest.mark.parametrize("rule", ["metropolis", "max_degree", "uniform", "push_sum"])
def test_sparse_and_dense_forms_agree_and_apply_matches_matmul(rule: Rule) -> None:
    g = families.scale_free(30, m=2, seed=1)
    edges = mixing_edges(g, rule=rule)
    w = mixing_matrix(g, rule=rule)
    assert np.array_equal(edges.to_dense(), w)
    x = np.random.default_rng(0).standard_normal((30, 3))
    assert np.allclose(edges.apply(x), w @ x)
    assert np.allclose(edges.apply(x[:, 0]), w @ x[:, 0])
    assert np.all(np.diff(edges.dst) >= 0)  # receiver-major order


def test_rules_have_their_properties_on_an_irregular_graph() -> None:
    g = families.star(6)
    max_deg = mixing_matrix(g, rule="max_degree")
    assert is_doubly_stochastic(max_deg)
    assert is_symmetric(max_deg)
    assert max_deg[1, 0] == pytest.approx(1 / 6)
    assert max_deg[1, 1] == pytest.approx(5 / 6)
    uniform = mixing_matrix(g, rule="uniform")
    assert is_row_stochastic(uniform)
    assert not is_column_stochastic(uniform)
    assert uniform[0, 3] == pytest.approx(1 / 6)
    assert uniform[3, 0] == pytest.approx(1 / 2)
    push = mixing_matrix(g, rule="push_sum")
    assert is_column_stochastic(push)
    assert not is_row_stochastic(push)


def test_push_sum_weights_on_a_directed_graph_keep_the_sum() -> None:
    g: nx.DiGraph[int] = nx.DiGraph([(0, 1), (1, 2), (2, 0), (0, 2)])
    edges = mixing_edges(g, rule="push_sum")
    assert is_column_stochastic(edges)
    assert not is_row_stochastic(edges)
    w = edges.to_dense()
    assert w[1, 0] == pytest.approx(1 / 3)
    assert w[2, 0] == pytest.approx(1 / 3)
    assert w[0, 0] == pytest.approx(1 / 3)
    assert w[2, 1] == pytest.approx(1 / 2)
    x = np.array([3.0, -1.0, 7.0])
    assert edges.apply(x).sum() == pytest.approx(x.sum())
    with pytest.raises(DirectedGraphError, match="push_sum"):
        mixing_edges(g)


def test_node_order_follows_nodes_argument_and_string_ids() -> None:
    g: nx.Graph[str] = nx.Graph([("b", "a"), ("a", "c")])
    edges = mixing_edges(g)
    assert edges.nodes == ("a", "b", "c")
    w = mixing_matrix(g, nodes=["c", "a", "b"])
    assert w[1, 0] == pytest.approx(1 / 3)
    assert w[0, 2] == 0
    with pytest.raises(TopologyError, match="exactly once"):
        mixing_matrix(g, nodes=["a", "b"])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(TopologyError, match="unknown mixing rule 'avg'; accepted: metropolis"):
        mixing_edges(nx.path_graph(3), rule="avg")  # type: ignore[arg-type]
    with pytest.raises(EmptyGraph):
        mixing_edges(nx.Graph())
    with pytest.raises(SelfLoops):
        mixing_edges(nx.Graph([(0, 0), (0, 1)]))
    with pytest.raises(TopologyError, match="out of range"):
        MixingEdges(
            nodes=(0, 1),
            src=np.array([0]),
            dst=np.array([2]),
            weight=np.ones(1),
            self_weight=np.zeros(2),
        )


def test_checks_reject_negative_and_non_square_matrices() -> None:
    assert not is_row_stochastic(np.array([[1.5, -0.5], [0.5, 0.5]]))
    assert not is_symmetric(np.ones((2, 3)))
    with pytest.raises(TopologyError, match="square"):
        is_row_stochastic(np.ones((2, 3)))


def test_edges_are_read_only() -> None:
    edges = mixing_edges(families.ring(5))
    with pytest.raises(ValueError, match="read-only"):
        edges.weight[0] = 1.0
