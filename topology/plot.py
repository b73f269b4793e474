"""Drawing a topology to a PNG (matplotlib, imported lazily with the Agg backend)."""

from __future__ import annotations

import os

import networkx as nx
import numpy as np

from topology.errors import TopologyError
from topology.graphs import Node

__all__ = ["RING_LIKE", "plot_graph"]

RING_LIKE = frozenset({"ring", "exponential", "small_world", "complete", "star"})
"""Families whose structure a circular layout shows best."""

_SPRING_LIMIT = 500  # networkx's spring layout needs scipy from 500 nodes on


def _ordered(g: nx.Graph[Node]) -> list[Node]:
    try:
        return sorted(g.nodes)  # type: ignore[type-var]
    except TypeError:  # mixed id types
        return list(g.nodes)


def plot_graph(
    g: nx.Graph[Node],
    path: str | os.PathLike[str],
    *,
    title: str,
    family: str | None = None,
    seed: int = 0,
) -> None:
    """Draw ``g`` to ``path``: circular layout for ring-like families or many nodes, else spring."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TopologyError("--plot needs matplotlib: pip install 'rumor[plot]'") from exc
    n = g.number_of_nodes()
    if family in RING_LIKE or n >= _SPRING_LIMIT:
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
        pos = {
            node: np.array([np.cos(a), np.sin(a)])
            for node, a in zip(_ordered(g), angles, strict=True)
        }
    else:
        pos = nx.spring_layout(g, seed=seed)
    fig, ax = plt.subplots(figsize=(7, 7))
    try:
        small = n <= 40
        nx.draw_networkx(
            g,
            pos=pos,
            ax=ax,
            with_labels=small,
            node_size=300 if small else max(4, 3000 // n),
            width=1.0 if small else 0.3,
            font_size=8,
            arrows=g.is_directed() and small,
        )
        ax.set_title(title)
        ax.set_axis_off()
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise TopologyError(f"cannot write plot {os.fspath(path)}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
