"""PNG plots of a run or a sweep. matplotlib (Agg) is imported lazily: it is optional."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from protocol.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Curve", "plot_curves", "plot_run"]

Record = Mapping[str, object]
Curve = tuple[str, Sequence[Record]]
"""A label and its rounds.jsonl records."""


def _pyplot() -> ModuleType:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("plots need matplotlib: pip install 'rumor[plot]'") from exc
    return plt


def _series(records: Sequence[Record], x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for record in records:
        xv, yv = record.get(x), record.get(y)
        if isinstance(xv, int | float) and isinstance(yv, int | float):
            xs.append(float(xv) / (1e6 if x == "bytes_sent" else 1.0))
            ys.append(float(yv))
    return xs, ys


def _panel(ax: Axes, curves: Sequence[Curve], x: str, y: str, *, log: bool) -> bool:
    drawn = False
    for label, records in curves:
        xs, ys = _series(records, x, y)
        if log:
            kept = [(a, b) for a, b in zip(xs, ys, strict=True) if b > 0]
            xs, ys = [a for a, _ in kept], [b for _, b in kept]
        if xs:
            ax.plot(xs, ys, label=label)
            drawn = True
    ax.set_xlabel("MB sent (all peers)" if x == "bytes_sent" else "round")
    ax.set_ylabel(y.replace("_", " "))
    if log and drawn:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if drawn and len(curves) > 1:
        ax.legend(fontsize=7)
    return drawn


def plot_curves(curves: Sequence[Curve], path: Path, *, metric: str, title: str) -> bool:
    """One PNG with ``metric`` against rounds (left) and bytes sent (right); False if no data."""
    plt = _pyplot()
    log = metric == "consensus_distance"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    try:
        drawn = _panel(axes[0], curves, "round", metric, log=log)
        _panel(axes[1], curves, "bytes_sent", metric, log=log)
        if drawn:
            fig.suptitle(title)
            fig.tight_layout()
            fig.savefig(path, dpi=100)
        return bool(drawn)
    finally:
        plt.close(fig)


def plot_run(
    records: Sequence[Record], directory: Path, *, title: str, key: str = "acc_mean"
) -> list[Path]:
    """The metric's plot (``key``: accuracy.png for ``acc_mean``, else named by the metric,
    e.g. mse.png) when the task has one, and consensus.png, for one run."""
    written = []
    png = "accuracy.png" if key == "acc_mean" else key.removesuffix("_mean") + ".png"
    for metric, name in ((key, png), ("consensus_distance", "consensus.png")):
        path = directory / name
        if plot_curves([(title, records)], path, metric=metric, title=title):
            written.append(path)
    return written
