"""The simulator's modules import one another without cycles, and only the command-line modules
see argparse (everything else takes frozen settings)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import sim

ROOT = Path(sim.__file__).parent
CLI_MODULES = {"sim.cli", "sim.cli_args", "sim.compare_cli", "sim.sweep_cli"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file, function bodies included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> nx.DiGraph[str]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _imports(path) & modules.keys():
            if target != name and target != "sim":  # the package's lazy re-exports
                graph.add_edge(name, target)
    return graph


def test_sim_modules_import_each_other_without_cycles() -> None:
    graph = _graph()
    assert graph.number_of_nodes() > 20
    assert list(nx.simple_cycles(graph)) == []


def test_only_the_command_line_modules_use_argparse() -> None:
    users = {_module_name(p) for p in ROOT.rglob("*.py") if "argparse" in _imports(p)}
    assert users <= CLI_MODULES
