"""Drive a run to completion: stream its stats to rounds.jsonl, then summary.json and plots.

This is the glue between the runner (which only yields stats) and the files; the CLI and the
sweep both use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.config import SimConfig
from sim.metrics import SwarmRoundStats, fitted_contraction
from sim.outputs import RunWriter, write_json
from sim.runner import Simulation

__all__ = ["RunResult", "run_and_report"]

log = logging.getLogger(__name__)

Record = dict[str, float | int | None]


@dataclass(frozen=True, kw_only=True)
class RunResult:
    config: SimConfig
    records: list[Record]
    """rounds.jsonl: round 0, then every evaluated round (every round for consensus)."""
    summary: dict[str, object]
    diverged: int | None = None
    """The round after which some parameter was no longer finite (the run stopped there)."""
    out: Path | None = None
    plots: list[Path] = field(default_factory=list)
    profile: dict[str, object] | None = None
    """Wall time per phase (:meth:`sim.profile.PhaseTimer.summary`) when profiling."""


def _summary(
    sim: Simulation, records: list[Record], wall: float, diverged: int | None
) -> dict[str, object]:
    final = records[-1]
    gap = sim.topology.spectral_gap
    summary: dict[str, object] = {
        "config": sim.config.to_dict(),
        "gamma": sim.gamma,
        "num_params": sim.num_params,
        "spectral_gap": gap,
        "spectral_gap_note": sim.topology.gap_note,
        "partition": sim.task.report,
        "bytes_per_peer": final["bytes_sent"] / sim.config.peers if final["bytes_sent"] else 0,
        "wall_s": wall,
        "final": final,
        "diverged": diverged,
        "metric": {
            "name": sim.metric_name,
            "key": f"{sim.metric_prefix}_mean",
            "higher_is_better": sim.higher_is_better,
        },
    }
    dp = sim.config.privacy
    if dp is not None and sim.accountant is not None:
        from sim.privacy_report import privacy_summary

        summary["privacy"] = privacy_summary(dp, sim.accountant)
    if sim.config.task == "consensus":  # every round is recorded: the rate can be read off
        distances = [r["consensus_distance"] for r in records]
        summary["contraction"] = {
            "measured": fitted_contraction([None if d is None else float(d) for d in distances]),
            "predicted": None if gap is None else (1 - gap) ** 2,
        }
    return summary


def run_and_report(
    config: SimConfig,
    *,
    on_round: Callable[[SwarmRoundStats], None] | None = None,
    plots: bool = True,
) -> RunResult:
    """Run ``config``; when ``config.out`` is set, write its files (all or nothing)."""
    sim = Simulation(config)  # every ConfigError surfaces here, before any file exists
    start = time.perf_counter()
    if config.out is None:
        records, diverged = _collect(sim, on_round, None)
        summary = _summary(sim, records, time.perf_counter() - start, diverged)
        return RunResult(
            config=config,
            records=records,
            summary=summary,
            diverged=diverged,
            profile=_profile(sim),
        )
    with RunWriter(config.out) as writer:
        records, diverged = _collect(sim, on_round, writer)
        summary = _summary(sim, records, time.perf_counter() - start, diverged)
        write_json(writer.path("summary.json"), summary)
        profile = _profile(sim)
        if profile is not None:
            write_json(writer.path("profile.json"), profile)
        if sim.task.model is not None:
            from sim.model_file import write_average_model

            path, last = writer.path("model.safetensors"), sim.config.rounds
            write_average_model(sim.task.model, sim.engine.params(), path, round=last)
        drawn = []
        if plots:
            from sim.plots import plot_run

            title = (
                f"{config.data or config.task} {config.topology} n={config.peers} {config.codec}"
            )
            drawn = plot_run(records, writer.staging, title=title, key=f"{sim.metric_prefix}_mean")
        out = writer.commit()
    return RunResult(
        config=config,
        records=records,
        summary=summary,
        diverged=diverged,
        out=out,
        plots=[out / p.name for p in drawn],
        profile=profile,
    )


def _profile(sim: Simulation) -> dict[str, object] | None:
    return sim.timer.summary() if sim.timer.enabled else None


def _with_epsilon(sim: Simulation, record: Record) -> Record:
    """``dp_epsilon``: the largest epsilon of any peer so far, when the run has DP."""
    if sim.accountant is not None:
        record["dp_epsilon"] = sim.accountant.max_epsilon()
    return record


def _collect(
    sim: Simulation, on_round: Callable[[SwarmRoundStats], None] | None, writer: RunWriter | None
) -> tuple[list[Record], int | None]:
    prefix = sim.metric_prefix
    records: list[Record] = [_with_epsilon(sim, sim.initial_stats().to_json(prefix=prefix))]
    diverged = None
    if writer is not None:
        writer.add_round(records[0])
    for stats in sim.run():
        if stats.diverged:
            diverged = stats.round
        if on_round is not None:
            on_round(stats)
        if not stats.evaluated:
            continue
        record = _with_epsilon(sim, stats.to_json(prefix=prefix))
        records.append(record)
        if writer is not None:
            writer.add_round(record)
    log.debug("run finished: %s", records[-1])
    return records, diverged
