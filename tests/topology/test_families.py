from __future__ import annotations

import math

import networkx as nx
import pytest

from topology import families
from topology.errors import TopologyError
from topology.named import FAMILIES, build_graph


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_builds_a_connected_graph_on_0_to_n_minus_1(name: str) -> None:
    g = build_graph(name, 64, seed=1)
    assert sorted(g.nodes) == list(range(64))
    if isinstance(g, nx.DiGraph):
        assert nx.is_strongly_connected(g)
    else:
        assert nx.is_connected(g)
    assert nx.number_of_selfloops(g) == 0


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.random])
def test_random_families_are_reproducible_and_seed_sensitive(name: str) -> None:
    a, b, c = (build_graph(name, 40, seed=s) for s in (5, 5, 6))
    assert nx.utils.graphs_equal(a, b)
    assert not nx.utils.graphs_equal(a, c)


def test_structure_of_deterministic_families() -> None:
    assert {d for _, d in families.ring(10).degree()} == {2}
    assert families.ring(2).number_of_edges() == 1
    assert families.ring(1).number_of_edges() == 0
    torus = families.torus(12, rows=3)
    assert {d for _, d in torus.degree()} == {4}
    assert torus.number_of_edges() == 24
    assert families.complete(7).number_of_edges() == 21
    assert sorted(d for _, d in families.star(4).degree()) == [1, 1, 1, 3]
    cube = families.hypercube(16)
    assert nx.is_isomorphic(cube, nx.hypercube_graph(4))
    expo = families.exponential(16, directed=True)
    assert isinstance(expo, nx.DiGraph)
    assert {d for _, d in expo.out_degree()} == {4}
    assert sorted(expo[3]) == [4, 5, 7, 11]
    # Undirected: hops 1, 2, 4, 8 both ways, with +8 and -8 the same node.
    assert {d for _, d in families.exponential(16).degree()} == {7}


def test_parameters_reach_the_family() -> None:
    assert {d for _, d in build_graph("random_regular:d=6", 20).degree()} == {6}
    g = build_graph("small_world:k=6,p=0", 20)
    assert nx.is_isomorphic(g, nx.watts_strogatz_graph(20, 6, 0))
    assert build_graph("scale_free:m=3", 30).number_of_edges() == 3 * (30 - 3)
    assert build_graph("erdos_renyi:p=1", 9).number_of_edges() == 36
    assert build_graph("torus:rows=4", 20).number_of_nodes() == 20
    assert build_graph("exponential:directed=true", 8).is_directed()


def test_seed_in_spec_overrides_keyword() -> None:
    a = build_graph("random_regular:d=4,seed=9", 30, seed=0)
    b = build_graph("random_regular:d=4", 30, seed=9)
    assert nx.utils.graphs_equal(a, b)


def test_erdos_renyi_default_p_is_above_the_connectivity_threshold() -> None:
    g = families.erdos_renyi(200, seed=3)
    expected_edges = math.comb(200, 2) * 2 * math.log(200) / 200
    assert 0.8 * expected_edges < g.number_of_edges() < 1.2 * expected_edges


@pytest.mark.parametrize(
    ("spec", "n", "fragment"),
    [
        ("ringg", 8, "unknown topology 'ringg'; accepted: ring, torus:rows=.., complete"),
        ("ring:d=2", 8, "ring: unknown parameter.s. d; accepted: none"),
        ("random_regular:k=2", 8, "accepted: d, seed"),
        ("random_regular:d=2.5", 8, "d=2.5 must be int, got float"),
        ("random_regular:d=3", 9, "n\\*d even"),
        ("torus", 10, "not a perfect square"),
        ("torus:rows=2", 10, "rows >= 3"),
        ("hypercube", 12, "not a power of two"),
        ("small_world:k=3", 10, "even 2 <= k < n"),
        ("erdos_renyi:p=0.01", 50, "no connected G.n=50, p=0.01. in 100 tries"),
        ("scale_free:m=5", 5, "1 <= m < n"),
        ("ring", 0, "integer >= 1, got 0"),
    ],
)
def test_bad_names_and_parameters_get_one_line_errors(spec: str, n: int, fragment: str) -> None:
    with pytest.raises(TopologyError, match=fragment) as info:
        build_graph(spec, n)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("n", [4, 7, 16])
def test_dumbbell_is_two_cliques_and_one_bridge(n: int) -> None:
    g = families.dumbbell(n)
    half = n // 2
    bridge = (half - 1, half)
    assert nx.is_connected(g)
    assert g.has_edge(*bridge)
    if n >= 6:  # n = 4: the cliques are single edges, bridges too
        assert len(list(nx.bridges(g))) == 1
    g.remove_edge(*bridge)
    sides = sorted(sorted(c) for c in nx.connected_components(g))
    assert sides == [list(range(half)), list(range(half, n))]
    assert all(
        g.subgraph(side).number_of_edges() == len(side) * (len(side) - 1) // 2 for side in sides
    )


def test_dumbbell_needs_four_nodes_and_is_named() -> None:
    with pytest.raises(TopologyError, match="integer >= 4"):
        families.dumbbell(3)
    assert nx.is_isomorphic(build_graph("dumbbell", 10), families.dumbbell(10))
