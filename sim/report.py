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
from sim.metrics import RoundStats, fitted_contraction
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
    out: Path | None = None
    plots: list[Path] = field(default_factory=list)


def _summary(sim: Simulation, records: list[Record], wall: float) -> dict[str, object]:
    final = records[-1]
    gap = sim.topology.spectral_gap
    summary: dict[str, object] = {
        "config": sim.config.to_dict(),
        "gamma": sim.gamma,
        "num_params": sim.num_params,
        "spectral_gap": sim.topology.spectral_gap,
        "partition": sim.task.report,
        "bytes_per_peer": final["bytes_sent"] / sim.config.peers if final["bytes_sent"] else 0,
        "wall_s": wall,
        "final": final,
        "metric": {
            "name": sim.metric_name,
            "key": f"{sim.metric_prefix}_mean",
            "higher_is_better": sim.higher_is_better,
        },
    }
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
    on_round: Callable[[RoundStats], None] | None = None,
    plots: bool = True,
) -> RunResult:
    """Run ``config``; when ``config.out`` is set, write its files (all or nothing)."""
    sim = Simulation(config)  # every ConfigError surfaces here, before any file exists
    start = time.perf_counter()
    if config.out is None:
        records = _collect(sim, on_round, None)
        return RunResult(config=config, records=records, summary=_summary(sim, records, 0.0))
    with RunWriter(config.out) as writer:
        records = _collect(sim, on_round, writer)
        summary = _summary(sim, records, time.perf_counter() - start)
        write_json(writer.path("summary.json"), summary)
        if sim.task.model is not None:
            from sim.model_file import write_average_model

            path, last = writer.path("model.safetensors"), sim.config.rounds
            write_average_model(sim.task.model, sim.engine.params(), path, round=last)
        drawn = []
        if plots:
            from sim.plots import plot_run

            title = f"{config.task} {config.topology} n={config.peers} {config.codec}"
            drawn = plot_run(records, writer.staging, title=title, key=f"{sim.metric_prefix}_mean")
        out = writer.commit()
    return RunResult(
        config=config,
        records=records,
        summary=summary,
        out=out,
        plots=[out / p.name for p in drawn],
    )


def _collect(
    sim: Simulation, on_round: Callable[[RoundStats], None] | None, writer: RunWriter | None
) -> list[Record]:
    prefix = sim.metric_prefix
    records: list[Record] = [sim.initial_stats().to_json(prefix=prefix)]
    if writer is not None:
        writer.add_round(records[0])
    for stats in sim.run():
        if on_round is not None:
            on_round(stats)
        if not stats.evaluated:
            continue
        record = stats.to_json(prefix=prefix)
        records.append(record)
        if writer is not None:
            writer.add_round(record)
    log.debug("run finished: %s", records[-1])
    return records
