"""``rumor topology``: describe (and draw) a named graph family or a graph file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Hashable
from typing import cast, get_args

import networkx as nx

from protocol.spec import parse_spec
from topology.analysis import TopologyReport, describe
from topology.errors import TopologyError
from topology.io import GRAPH_SUFFIXES, load_graph
from topology.mixing import Rule
from topology.named import FAMILIES, build_graph, describe_families
from topology.spectral import DENSE_LIMIT

__all__ = ["register"]

_EPILOG = """\
families (NAME or NAME:key=value,...):
{families}

examples:
  rumor topology ring --nodes 16
  rumor topology random_regular:d=4 --nodes 1000 --seed 3 --json
  rumor topology small_world:k=4,p=0.1 --nodes 64 --plot sw.png
  rumor topology torus --nodes 36 --rule max_degree
  rumor topology --file swarm.graphml

The spectral gap rho = 1 - max(|lambda_2|, |lambda_N|) of the mixing matrix sets the speed of
gossip: disagreement shrinks about (1 - rho) per round, so ln(1/eps) / rho rounds shrink it by eps.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rumor topology`` to the dispatcher."""
    parser = subparsers.add_parser(
        "topology",
        help="describe a topology: degrees, diameter, spectral gap, predicted rounds",
        description="Build a named graph family (or read a graph file) and print what governs "
        "gossip on it: nodes, edges, degrees, diameter, spectral gap, predicted consensus rounds.",
        epilog=_EPILOG.format(families=describe_families()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help="graph family, e.g. random_regular:d=4"
    )
    parser.add_argument(
        "--file", metavar="PATH", help=f"read the graph from a file ({', '.join(GRAPH_SUFFIXES)})"
    )
    parser.add_argument("--nodes", "-n", type=int, metavar="N", help="number of nodes (with NAME)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random families (default: 0)")
    parser.add_argument(
        "--rule",
        choices=get_args(Rule),
        default=None,
        help="mixing weights (default: metropolis; push_sum for directed graphs)",
    )
    parser.add_argument(
        "--eps", type=float, default=1e-3, help="disagreement factor (default: 1e-3)"
    )
    parser.add_argument(
        "--method",
        choices=["auto", "dense", "sparse"],
        default="auto",
        help=f"eigensolver (default: auto: dense up to {DENSE_LIMIT} nodes, then sparse Lanczos)",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the graph to this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=run)


def _load(args: argparse.Namespace) -> tuple[nx.Graph[Hashable], str, str | None]:
    """The graph, a label for it, and its family name (None for files)."""
    if (args.name is None) == (args.file is None):
        raise TopologyError(
            "give either a family NAME or --file PATH; accepted names: " + ", ".join(FAMILIES)
        )
    if args.file is not None:
        if args.nodes is not None:
            raise TopologyError("--nodes applies to a family NAME, not to --file")
        return load_graph(args.file), str(args.file), None
    if args.nodes is None:
        raise TopologyError(f"{args.name}: --nodes N is required with a family name")
    spec = parse_spec(args.name)
    graph = cast("nx.Graph[Hashable]", build_graph(spec, args.nodes, seed=args.seed))
    return graph, str(spec), spec.name


def run(args: argparse.Namespace) -> int:
    """Handler of ``rumor topology``: returns 0, raises TopologyError on bad input."""
    graph, label, family = _load(args)
    report: TopologyReport = describe(graph, rule=args.rule, eps=args.eps, method=args.method)
    if args.plot:
        from topology.plot import plot_graph

        title = f"{label}: n = {report.nodes}, \u03c1 = {report.spectral_gap:.4g}"
        plot_graph(graph, args.plot, title=title, family=family, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        seed = f" (seed {args.seed})" if family and FAMILIES[family].random else ""
        print(f"{'topology':<17}{label}{seed}")
        print(report.to_text())
        if args.plot:
            print(f"{'plot':<17}{args.plot}")
    return 0
