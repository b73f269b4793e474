from __future__ import annotations

import math

import networkx as nx
import pytest

from topology import analysis, families
from topology.analysis import JSON_KEYS, describe, diameter, diameter_lower_bound
from topology.errors import DisconnectedGraph


@pytest.mark.parametrize(
    "g",
    [
        families.ring(31),
        families.torus(36),
        families.small_world(300, seed=2),
        families.scale_free(300, seed=3),
        families.random_regular(200, d=3, seed=4),
        families.exponential(37, directed=True),
        nx.balanced_tree(2, 5),
    ],
)
def test_bitset_diameter_matches_networkx(g: nx.Graph[int]) -> None:
    assert diameter(g) == nx.diameter(g)
    assert diameter_lower_bound(g) <= diameter(g)


def test_diameter_over_several_source_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "_MAX_WORDS", 1)  # 64 sources per batch
    g = nx.disjoint_union(families.ring(150), families.ring(150))
    g.add_edge(0, 150)
    assert diameter(g) == nx.diameter(g) == 151


def test_describe_falls_back_to_a_lower_bound_past_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analysis, "EXACT_DIAMETER_BUDGET", 1)
    report = describe(families.torus(36))
    assert not report.diameter_exact
    assert 3 <= report.diameter <= 6
    assert "lower bound" in report.to_text()


def test_describe_ring() -> None:
    report = describe(families.ring(16))
    assert report.to_json() == {
        "nodes": 16,
        "edges": 16,
        "min_degree": 2,
        "max_degree": 2,
        "diameter": 8,
        "spectral_gap": pytest.approx((2 / 3) * (1 - math.cos(math.pi / 8))),
        "consensus_rounds": math.ceil(math.log(1000) / ((2 / 3) * (1 - math.cos(math.pi / 8)))),
    }
    assert tuple(report.to_json()) == JSON_KEYS
    assert report.diameter_exact
    assert report.rule == "metropolis"
    assert "spectral gap     0.0507" in report.to_text()


def test_describe_star_degrees_and_rule() -> None:
    report = describe(families.star(10), rule="max_degree", eps=0.01)
    assert (report.min_degree, report.max_degree, report.mean_degree) == (1, 9, 1.8)
    # max-degree weights 1/10 on the star: eigenvalues of I - L/10 are 1, 0.9 (x8), 0.
    assert report.spectral_gap == pytest.approx(0.1)
    assert report.consensus_rounds == math.ceil(math.log(100) / 0.1)


def test_describe_directed_uses_push_sum_and_out_degrees() -> None:
    report = describe(families.exponential(16, directed=True))
    assert report.rule == "push_sum"
    assert report.directed
    assert (report.min_degree, report.max_degree, report.diameter) == (4, 4, 4)


def test_describe_rejects_disconnected_graphs() -> None:
    with pytest.raises(DisconnectedGraph, match="sizes 3, 2"):
        describe(nx.Graph([(0, 1), (1, 2), (3, 4)]))


def test_single_node() -> None:
    report = describe(nx.empty_graph(1))
    assert (report.diameter, report.spectral_gap, report.consensus_rounds) == (0, 1.0, 0)
