"""Graphs from files: GraphML, node-link JSON and edge lists. Node ids may be strings (peer names).

Loading only parses; call :func:`topology.validation.validate_graph` before using the graph.
Reading errors become :class:`~topology.errors.TopologyError` naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable
from pathlib import Path
from xml.etree.ElementTree import ParseError

import networkx as nx

from topology.errors import TopologyError
from topology.graphs import Node

__all__ = ["GRAPH_SUFFIXES", "load_graph", "save_graph"]

GRAPH_SUFFIXES = (".graphml", ".json", ".edgelist", ".edges", ".txt")


def _read_node_link(path: Path) -> nx.Graph[Hashable]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "nodes" not in data:
        raise TopologyError(f"{path}: expected node-link JSON, an object with 'nodes' and 'edges'")
    # networkx < 3.4 wrote the edges under "links".
    key = "links" if "links" in data and "edges" not in data else "edges"
    nodes, links = data["nodes"], data.get(key, [])
    if not isinstance(nodes, list) or not isinstance(links, list):
        raise TopologyError(f"{path}: 'nodes' and '{key}' must be lists")
    ids = {n.get("id") for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), Hashable)}
    for i, link in enumerate(links):
        ends = (link.get("source"), link.get("target")) if isinstance(link, dict) else ()
        if len(ends) != 2 or not all(isinstance(e, Hashable) and e in ids for e in ends):
            raise TopologyError(
                f"{path}: {key}[{i}] = {link!r} must join two nodes listed under 'nodes'"
            )
    graph: nx.Graph[Hashable] = nx.node_link_graph(data, edges=key)
    return graph


def _read_edge_list(path: Path) -> nx.Graph[Hashable]:
    graph: nx.Graph[Hashable] = nx.Graph()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) == 3:
            try:
                float(fields[2])
            except ValueError:
                fields = []
        if len(fields) not in (2, 3):
            raise TopologyError(
                f"{path}:{number}: {line.strip()!r} is not an edge; "
                "expected 'node node' or 'node node weight'"
            )
        graph.add_edge(fields[0], fields[1])
    return graph


def load_graph(path: str | os.PathLike[str]) -> nx.Graph[Hashable]:
    """Read a graph, choosing the format by suffix (see :data:`GRAPH_SUFFIXES`).

    Edge lists are whitespace-separated pairs of node ids, read as strings, optionally followed
    by a numeric weight (ignored); ``#`` starts a comment; any other line is an error.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     file = Path(tmp) / "swarm.edgelist"
    ...     _ = file.write_text("# peers\\nalice bob\\nbob carol\\n")
    ...     sorted(load_graph(file).edges())
    [('alice', 'bob'), ('bob', 'carol')]
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in GRAPH_SUFFIXES:
        raise TopologyError(
            f"{file}: unknown graph format {suffix!r}; accepted: {', '.join(GRAPH_SUFFIXES)}"
        )
    try:
        if suffix == ".graphml":
            graph: nx.Graph[Hashable] = nx.read_graphml(file)
        elif suffix == ".json":
            graph = _read_node_link(file)
        else:
            graph = _read_edge_list(file)
    except OSError as exc:
        raise TopologyError(f"cannot read graph file {file}: {exc.strerror or exc}") from exc
    except (ParseError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{file}: not valid {suffix[1:]}: {exc}") from exc
    except (nx.NetworkXError, KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, TopologyError):
            raise
        raise TopologyError(f"{file}: cannot build a graph from it: {exc!r}") from exc
    return graph


def save_graph(g: nx.Graph[Node], path: str | os.PathLike[str]) -> None:
    """Write ``g`` in the format its suffix names (node-link JSON uses the key ``edges``)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".graphml":
        nx.write_graphml(g, file)
    elif suffix == ".json":
        file.write_text(json.dumps(nx.node_link_data(g, edges="edges")), encoding="utf-8")
    elif suffix in GRAPH_SUFFIXES:
        nx.write_edgelist(g, file, data=False)
    else:
        raise TopologyError(
            f"{file}: unknown graph format {suffix!r}; accepted: {', '.join(GRAPH_SUFFIXES)}"
        )
