"""A sweep's files: DIR/sweep.csv (one row per run), DIR/curves.jsonl (every run's records,
labelled) and DIR/comparison.png (the first seed of each setting), written all or nothing."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from sim.config import SimConfig
from sim.outputs import RunWriter
from sim.report import Record
from sim.sweep import RunRow, SweepResult

__all__ = ["label", "write_sweep"]


def label(config: SimConfig) -> str:
    """A run's setting in tables, legends and progress: topology, codec, failures."""
    return f"{config.topology} {config.codec} {config.failures.describe()}"


def write_sweep(writer: RunWriter, result: SweepResult) -> Path:
    """Write the three files and commit them to the writer's directory."""
    _write_csv(writer.path("sweep.csv"), result.rows)
    _write_curves(writer.path("curves.jsonl"), result.curves)
    _plot(writer.path("comparison.png"), result.curves)
    return writer.commit()


def _write_csv(path: Path, rows: list[RunRow]) -> None:
    with path.open("w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=[f.name for f in dataclasses.fields(RunRow)])
        out.writeheader()
        for row in rows:
            out.writerow(dataclasses.asdict(row))


def _write_curves(path: Path, curves: list[tuple[SimConfig, list[Record]]]) -> None:
    with path.open("w") as handle:
        for config, records in curves:
            for record in records:
                line = {
                    "topology": config.topology,
                    "codec": config.codec,
                    "seed": config.seed,
                    "failures": config.failures.describe(),
                    **record,
                }
                handle.write(json.dumps(line, allow_nan=False) + "\n")


def _plot(path: Path, curves: list[tuple[SimConfig, list[Record]]]) -> None:
    from sim.plots import plot_curves  # matplotlib: only when writing

    seen: dict[str, list[Record]] = {}
    for config, records in curves:
        seen.setdefault(label(config), records)  # first seed of each setting
    last = curves[0][1][-1]
    key = next((k for k in last if k.endswith("_mean") and last[k] is not None), None)
    metric = key if key is not None else "consensus_distance"
    first = curves[0][0]
    title = f"{first.task}, {first.peers} peers, {first.partition} (first seed of each setting)"
    plot_curves(list(seen.items()), path, metric=metric, title=title)
