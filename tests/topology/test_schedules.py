from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from topology import families
from topology.errors import TopologyError
from topology.mixing import is_doubly_stochastic, mixing_edges
from topology.schedules import (
    OnePeerExponential,
    RandomMatching,
    Schedule,
    StaticSchedule,
    schedule_from_spec,
)


@pytest.mark.parametrize("n", [2, 4, 8, 16, 64])
def test_one_peer_exponential_reaches_the_exact_mean_after_log2_n_rounds(n: int) -> None:
    s = OnePeerExponential(n)
    k = n.bit_length() - 1
    x = np.random.default_rng(n).standard_normal((n, 3))
    for r in range(k):
        edges = s.edges_at(r)
        assert is_doubly_stochastic(edges)
        assert len(edges.src) == n  # one message per node per round
        before = x
        x = edges.apply(x)
    assert not np.allclose(before, before.mean(axis=0))  # not already exact a round earlier
    assert np.allclose(x, x.mean(axis=0), atol=1e-12)


def test_one_peer_exponential_cycles_through_hops() -> None:
    s = OnePeerExponential(16)
    assert [s.hop(r) for r in range(6)] == [1, 2, 4, 8, 1, 2]
    g = s.graph_at(2)
    assert g.is_directed()
    assert sorted(g[5]) == [9]
    assert g.number_of_edges() == 16
    assert s.edges_at(1) is s.edges_at(5)  # cached by hop


def test_random_matching_keeps_the_mean_and_is_seeded_per_round() -> None:
    s = RandomMatching(11, seed=4)
    x = np.random.default_rng(0).standard_normal(11)
    mean = x.mean()
    for r in range(20):
        pairs = s.pairs_at(r)
        flat = [v for p in pairs for v in p]
        assert len(flat) == len(set(flat)) == 10  # a maximal matching of 11 leaves one out
        edges = s.edges_at(r)
        assert is_doubly_stochastic(edges)
        y = edges.apply(x)
        lone = (set(range(11)) - set(flat)).pop()
        assert y[lone] == x[lone]
        a, b = pairs[0]
        assert y[a] == y[b] == pytest.approx((x[a] + x[b]) / 2)
        x = y
        assert x.mean() == pytest.approx(mean)
    assert s.pairs_at(3) == RandomMatching(11, seed=4).pairs_at(3)
    assert s.pairs_at(3) != s.pairs_at(4)


def test_random_matching_on_a_base_graph_uses_only_its_edges() -> None:
    base = families.ring(12)
    s = RandomMatching(12, seed=1, base=base)
    for r in range(10):
        for a, b in s.pairs_at(r):
            assert base.has_edge(a, b)
        matched = {v for p in s.pairs_at(r) for v in p}
        # Maximal: no base edge joins two unmatched nodes.
        assert not any(u not in matched and v not in matched for u, v in base.edges())


def test_static_schedule_caches_weights() -> None:
    g = families.torus(9)
    s = StaticSchedule(g)
    assert s.graph_at(5) is g
    assert s.edges_at(3) is s.edges_at(0)
    assert np.array_equal(s.edges_at(0).to_dense(), mixing_edges(g).to_dense())


def test_schedule_from_spec() -> None:
    assert isinstance(schedule_from_spec("one_peer_exponential", 8), OnePeerExponential)
    matching = schedule_from_spec("random_matching:base=hypercube", 8, seed=2)
    assert isinstance(matching, RandomMatching)
    assert matching.base is not None
    static = schedule_from_spec("small_world:k=4,p=0.2", 20, seed=3)
    assert isinstance(static, StaticSchedule)
    assert nx.utils.graphs_equal(static.graph_at(0), families.small_world(20, k=4, p=0.2, seed=3))
    for s in (matching, static, OnePeerExponential(4)):
        assert isinstance(s, Schedule)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            "gossip",
            "unknown schedule 'gossip'; accepted: one_peer_exponential, random_matching, ring",
        ),
        ("one_peer_exponential:k=2", "unknown parameter.s. k; accepted: none"),
        ("random_matching:base=nope", "unknown topology 'nope'"),
    ],
)
def test_schedule_errors(spec: str, fragment: str) -> None:
    with pytest.raises(TopologyError, match=fragment):
        schedule_from_spec(spec, 8)


def test_rounds_must_be_non_negative() -> None:
    with pytest.raises(TopologyError, match="round must be an integer >= 0"):
        OnePeerExponential(8).edges_at(-1)
