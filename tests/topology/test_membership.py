from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topology.errors import EmptyGraph, TopologyError
from topology.membership import membership_graph

ids = st.sets(
    st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=8), min_size=3, max_size=40
)


def _edge_set(g: nx.Graph[str]) -> set[frozenset[str]]:
    return {frozenset(e) for e in g.edges()}


@settings(max_examples=40, deadline=None)
@given(ids, st.randoms(use_true_random=False), st.integers(0, 2**32))
def test_same_live_set_and_seed_give_the_same_graph_in_any_order(
    live: set[str], shuffler: object, seed: int
) -> None:
    order = sorted(live)
    shuffled = list(order)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    a = membership_graph(order, "hashed_rings:k=2", seed=seed)
    b = membership_graph(shuffled, "hashed_rings:k=2", seed=seed)
    assert nx.utils.graphs_equal(a, b)
    assert set(a.nodes) == live
    assert nx.is_connected(a)


@settings(max_examples=60, deadline=None)
@given(ids, st.data(), st.sampled_from([2, 4, 6]), st.integers(0, 1000))
def test_a_leave_or_join_rewires_a_bounded_number_of_edges(
    live: set[str], data: st.DataObject, d: int, seed: int
) -> None:
    family = f"hashed_rings:k={d // 2}"
    leaver = data.draw(st.sampled_from(sorted(live)))
    before = _edge_set(membership_graph(live, family, seed=seed))
    after = _edge_set(membership_graph(live - {leaver}, family, seed=seed))
    # Per ring: the leaver's two edges go, its two neighbours get joined.
    assert len(before ^ after) <= 3 * (d // 2)
    untouched = {e for e in before ^ after if leaver not in e}
    assert len(untouched) <= d // 2  # only the splice edges join others


def test_rings_depend_on_the_seed() -> None:
    live = [f"peer-{i}" for i in range(30)]
    assert not nx.utils.graphs_equal(
        membership_graph(live, "ring", seed=1), membership_graph(live, "ring", seed=2)
    )
    ring = membership_graph(live, "ring", seed=1)
    assert {d for _, d in ring.degree()} == {2}
    assert nx.is_connected(ring)


def test_degree_of_the_union_of_rings() -> None:
    live = [f"p{i}" for i in range(200)]
    g = membership_graph(live, "hashed_rings:k=3", seed=0)
    degrees = [d for _, d in g.degree()]
    assert max(degrees) <= 6
    assert sum(degrees) / len(degrees) > 5.8
    assert membership_graph(live[:5], "complete").number_of_edges() == 10
    assert membership_graph(["solo"], "ring").number_of_nodes() == 1
    assert membership_graph(["a", "b"], "ring").number_of_edges() == 1


@pytest.mark.parametrize(
    ("family", "fragment"),
    [
        ("torus", "membership graphs support ring, hashed_rings:k=.., complete; got 'torus'"),
        ("random_regular:d=4", "support ring, hashed_rings:k=.., complete; got 'random_regular"),
        ("hashed_rings:k=0", "integer >= 1, got 0"),
    ],
)
def test_unsupported_membership_families(family: str, fragment: str) -> None:
    with pytest.raises(TopologyError, match=fragment):
        membership_graph(["a", "b", "c"], family)


def test_empty_live_set() -> None:
    with pytest.raises(EmptyGraph):
        membership_graph([], "ring")
