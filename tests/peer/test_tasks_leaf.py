"""peer/tasks is a leaf: the simulator and the daemon share it, so it imports only the standard
library, torch, numpy and ``protocol`` (and itself), never the daemon's runtime, transport,
config or launcher, nor the simulator."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import peer.tasks

ALLOWED = {"torch", "numpy", "protocol", "peer"}
TASKS = Path(peer.tasks.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(TASKS.glob("*.py")), ids=lambda p: p.name)
def test_tasks_module_imports_only_leaf_dependencies(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        assert top in ALLOWED, f"{path.name} imports {name}"
        if top == "peer":
            assert name == "peer.tasks" or name.startswith("peer.tasks."), (
                f"{path.name} imports {name}: peer/tasks must stay a leaf"
            )
