from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path
from typing import TypeVar

import networkx as nx
import pytest

from topology.errors import (
    DirectedGraphError,
    DisconnectedGraph,
    EmptyGraph,
    SelfLoops,
    TopologyError,
)
from topology.io import load_graph, save_graph
from topology.validation import validate_graph

A = TypeVar("A", bound=Hashable)
B = TypeVar("B", bound=Hashable)
PEERS = [("alice", "bob"), ("bob", "carol"), ("carol", "dave"), ("dave", "alice"), ("bob", "dave")]


def _expected() -> nx.Graph[str]:
    return nx.Graph(PEERS)


def _same(a: nx.Graph[A], b: nx.Graph[B]) -> bool:
    edges = {frozenset(e) for e in a.edges()}
    return set(a) == set(b) and edges == {frozenset(e) for e in b.edges()}


def test_graphml_with_string_ids(tmp_path: Path) -> None:
    path = tmp_path / "swarm.graphml"
    nx.write_graphml(_expected(), path)
    assert _same(load_graph(path), _expected())


@pytest.mark.parametrize("key", ["edges", "links"])
def test_node_link_json_with_string_ids(tmp_path: Path, key: str) -> None:
    data = {
        "directed": False,
        "multigraph": False,
        "graph": {},
        "nodes": [{"id": p} for p in ["alice", "bob", "carol", "dave"]],
        key: [{"source": u, "target": v} for u, v in PEERS],
    }
    path = tmp_path / "swarm.json"
    path.write_text(json.dumps(data))
    assert _same(load_graph(path), _expected())


@pytest.mark.parametrize("suffix", [".edgelist", ".txt"])
def test_edge_list_with_comments_and_weights(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"swarm{suffix}"
    lines = ["# the swarm"] + [f"{u} {v} 0.5" for u, v in PEERS]
    path.write_text("\n".join(lines) + "\n")
    g = load_graph(path)
    assert _same(g, _expected())
    assert all(isinstance(node, str) for node in g)


@pytest.mark.parametrize("suffix", [".graphml", ".json", ".edgelist"])
def test_save_then_load_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"g{suffix}"
    save_graph(_expected(), path)
    assert _same(load_graph(path), _expected())


def test_directed_graphml_stays_directed(tmp_path: Path) -> None:
    path = tmp_path / "d.graphml"
    nx.write_graphml(nx.DiGraph([("a", "b"), ("b", "a")]), path)
    g = load_graph(path)
    assert g.is_directed()
    with pytest.raises(DirectedGraphError, match="directed; expected an undirected"):
        validate_graph(g)
    validate_graph(g, allow_directed=True)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("g.json", "{not json", "not valid json"),
        ("g.json", "[1, 2]", "expected node-link JSON"),
        ("g.graphml", "<graphml", "not valid graphml"),
        ("g.gml", "graph []", "unknown graph format '.gml'; accepted: .graphml, .json"),
    ],
)
def test_unreadable_files_name_the_file(
    tmp_path: Path, name: str, content: str, fragment: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TopologyError, match=fragment) as info:
        load_graph(path)
    assert name in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"cannot read graph file .*nope\.graphml"):
        load_graph(tmp_path / "nope.graphml")


def test_validation_errors() -> None:
    with pytest.raises(EmptyGraph, match="no nodes"):
        validate_graph(nx.Graph())
    with pytest.raises(SelfLoops, match=r"1 self-loop\(s\) at node\(s\) 'b'"):
        validate_graph(nx.Graph([("a", "b"), ("b", "b")]))
    g = nx.Graph([(0, 1), (1, 2), (3, 4)])
    g.add_node(5)
    with pytest.raises(DisconnectedGraph, match="3 components of sizes 3, 2, 1") as info:
        validate_graph(g)
    assert info.value.sizes == (3, 2, 1)
    with pytest.raises(DisconnectedGraph, match="strongly connected components of sizes 1, 1"):
        validate_graph(nx.DiGraph([(0, 1)]), allow_directed=True)
    with pytest.raises(TopologyError, match="parallel edges"):
        validate_graph(nx.MultiGraph([(0, 1), (0, 1)]))


def test_errors_are_config_errors_so_the_cli_exits_2() -> None:
    from protocol.errors import ConfigError

    assert issubclass(DisconnectedGraph, ConfigError)
    assert issubclass(TopologyError, ValueError)


@pytest.mark.parametrize(
    ("text", "line"),
    [("a b\nfoo\n", 2), ("a b c d\n", 1), ("a b\nb c {bad\n", 2)],
)
def test_edge_list_lines_that_are_not_edges_name_the_line(
    tmp_path: Path, text: str, line: int
) -> None:
    path = tmp_path / "g.edgelist"
    path.write_text(text)
    with pytest.raises(TopologyError, match=rf"g\.edgelist:{line}: .* is not an edge"):
        load_graph(path)


def test_node_link_links_must_join_listed_nodes(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(
        json.dumps(
            {
                "nodes": [{"id": "a"}, {"id": "b"}],
                "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "ghost"}],
            }
        )
    )
    with pytest.raises(TopologyError, match=r"edges\[1\] .* two nodes listed"):
        load_graph(path)
