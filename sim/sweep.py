"""Running a sweep: the grid's runs one after the other, each reduced to a :class:`RunRow`.

Pure: :func:`run_sweep` takes :class:`~sim.sweep_settings.SweepSettings` and returns a
:class:`SweepResult`; it prints and writes nothing (``rumor sweep`` does, with :func:`summarise`
and :mod:`sim.sweep_files`). Compression pays in bytes to accuracy, not at equal rounds: read
the ``MB to tgt`` column.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.config import SimConfig
from sim.metrics import SwarmRoundStats
from sim.report import Record, RunResult, run_and_report
from sim.sweep_settings import SweepSettings, Target

__all__ = ["RunRow", "SweepResult", "run_sweep", "summarise", "to_target"]

OnRound = Callable[[int, SimConfig, SwarmRoundStats], None]
"""Progress callback: (index of the run in the grid, its config, the round's stats)."""


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """One run of the sweep (one line of sweep.csv)."""

    topology: str
    codec: str
    gamma: float
    failures: str
    seed: int
    final_acc: float | None
    """The final mean metric (accuracy unless configured otherwise; see ``metric``)."""
    final_distance: float | None
    """None when the run diverged."""
    rounds_to_target: int | None
    """None when the target was not reached, or when the sweep has no target."""
    bytes_to_target: int | None
    bytes_total: int
    spectral_gap: float | None
    diverged: int | None
    """The round where some parameter stopped being finite (the run stopped there)."""
    wall_s: float
    metric: str = "accuracy"
    dp_epsilon: float | None = None
    """The largest epsilon any peer spent (runs with ``--dp``; docs/privacy.md)."""

    @property
    def setting(self) -> tuple[str, str, str]:
        return (self.topology, self.codec, self.failures)


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    settings: SweepSettings
    rows: list[RunRow]
    curves: list[tuple[SimConfig, list[Record]]]
    """Every run's records, in grid order."""

    @property
    def diverged(self) -> list[RunRow]:
        return [row for row in self.rows if row.diverged is not None]


def to_target(
    records: Sequence[Record],
    *,
    target: Target,
    target_acc: float | None,
    target_distance: float,
    key: str = "acc_mean",
    higher: bool = True,
) -> tuple[int | None, int | None]:
    """First evaluated (round, cumulative bytes) at the target; (None, None) if never reached
    or if there is no target. ``target_acc`` is a target for the metric under ``key``: reached
    at or above it when higher is better, at or below it otherwise (an MSE target, say).

    >>> recs = [{"round": 0, "acc_mean": 0.1, "bytes_sent": 0, "consensus_distance": 1.0},
    ...         {"round": 5, "acc_mean": 0.8, "bytes_sent": 50, "consensus_distance": 0.1}]
    >>> to_target(recs, target="accuracy", target_acc=0.7, target_distance=1e-3)
    (5, 50)
    >>> to_target(recs, target=None, target_acc=None, target_distance=1e-3)
    (None, None)
    """
    start = records[0]["consensus_distance"]
    for record in records:
        acc, dist = record.get(key), record.get("consensus_distance")
        if target == "accuracy":
            reached = (
                acc is not None
                and target_acc is not None
                and (acc >= target_acc if higher else acc <= target_acc)
            )
        elif target == "distance":
            reached = dist is not None and start is not None and dist <= target_distance * start
        else:
            return None, None
        if reached:
            return int(record["round"] or 0), int(record["bytes_sent"] or 0)
    return None, None


def _row(settings: SweepSettings, config: SimConfig, result: RunResult) -> RunRow:
    final = result.records[-1]
    metric = result.summary["metric"]
    assert isinstance(metric, dict)
    key = str(metric["key"])
    rounds, spent = to_target(
        result.records,
        target=settings.target,
        target_acc=settings.target_acc,
        target_distance=settings.target_distance or 0.0,
        key=key,
        higher=bool(metric["higher_is_better"]),
    )
    gap, distance = result.summary["spectral_gap"], final["consensus_distance"]
    return RunRow(
        topology=config.topology,
        codec=config.codec,
        gamma=float(str(result.summary["gamma"])),
        failures=config.failures.describe(),
        seed=config.seed,
        final_acc=None if final.get(key) is None else float(final[key] or 0.0),
        final_distance=None if distance is None else float(distance),
        rounds_to_target=rounds,
        bytes_to_target=spent,
        bytes_total=int(final["bytes_sent"] or 0),
        spectral_gap=gap if isinstance(gap, float) else None,
        diverged=result.diverged,
        wall_s=float(str(result.summary["wall_s"])),
        metric=str(metric["name"]),
        dp_epsilon=None if final.get("dp_epsilon") is None else float(final["dp_epsilon"] or 0.0),
    )


def run_sweep(settings: SweepSettings, *, on_round: OnRound | None = None) -> SweepResult:
    """Run every config of the grid in turn; return one row and the records of each."""
    rows, curves = [], []
    for index, config in enumerate(settings.grid()):

        def show(stats: SwarmRoundStats, index: int = index, config: SimConfig = config) -> None:
            if on_round is not None:
                on_round(index, config, stats)

        result = run_and_report(config, on_round=show, plots=False)
        rows.append(_row(settings, config, result))
        curves.append((config, result.records))
    return SweepResult(settings=settings, rows=rows, curves=curves)


def _mean_text(values: list[float], digits: int) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}"


def _final_text(group: list[RunRow]) -> str:
    fine = [r for r in group if r.diverged is None]
    if not fine:
        return "diverged"
    accs = [r.final_acc for r in fine if r.final_acc is not None]
    if accs:
        text = _mean_text(accs, 4)
    else:
        text = f"cd {statistics.mean(r.final_distance or 0.0 for r in fine):.2e}"
    return text if len(fine) == len(group) else f"{text} ({len(group) - len(fine)} div)"


def _target_text(group: list[RunRow], target: Target) -> tuple[str, str]:
    if target is None:
        return "n/a", "n/a"
    hit = [r for r in group if r.rounds_to_target is not None]
    if not hit:
        return "-", "-"
    rounds = f"{statistics.mean(r.rounds_to_target or 0 for r in hit):.0f}"
    mb = f"{statistics.mean((r.bytes_to_target or 0) / 1e6 for r in hit):.2f}"
    if len(hit) < len(group):
        rounds += f" ({len(hit)}/{len(group)})"
    return rounds, mb


def _epsilon_text(group: list[RunRow]) -> str:
    """The largest epsilon of the setting's seeds (``-`` for a run without one)."""
    spent = [r.dp_epsilon for r in group if r.dp_epsilon is not None]
    return f"{max(spent):.4g}" if spent else "-"


def summarise(rows: Sequence[RunRow], *, target: Target) -> list[str]:
    """The printed table: one line per setting, aggregated over seeds. To-target columns say
    ``-`` when no seed reached the target and ``n/a`` when the sweep has no target. With
    ``--dp``, an ``epsilon`` column: the largest any peer spent, over the setting's seeds."""
    settings: dict[tuple[str, str, str], list[RunRow]] = {}
    for row in rows:
        settings.setdefault(row.setting, []).append(row)
    dp = any(r.dp_epsilon is not None for r in rows)
    label = "final " + ("acc" if not rows or rows[0].metric == "accuracy" else rows[0].metric)
    header = f"{'topology':<22} {'codec':<18} {'failures':<14} {label:>16} "
    header += f"{'rounds to tgt':>13} {'MB to tgt':>10} {'MB total':>9} {'gap':>7}"
    header += f" {'epsilon':>9}" if dp else ""
    lines = [header, "-" * len(header)]
    for (topology, codec, failures), group in settings.items():
        rounds, mb = _target_text(group, target)
        total = statistics.mean(r.bytes_total / 1e6 for r in group)
        gap = group[0].spectral_gap
        gap_text = "-" if gap is None else f"{gap:.4f}"
        lines.append(
            f"{topology:<22} {codec:<18} {failures:<14} {_final_text(group):>16} {rounds:>13} "
            f"{mb:>10} {total:>9.2f} {gap_text:>7}" + (f" {_epsilon_text(group):>9}" if dp else "")
        )
    return lines
