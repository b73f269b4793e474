"""Running a sweep: the grid's runs one after the other, then the CSV, curves and table."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math

from protocol.errors import ConfigError
from sim.cli import apply_threads, settings_from_args
from sim.config import SimConfig, config_from_settings
from sim.metrics import RoundStats
from sim.outputs import RunWriter
from sim.progress import Progress
from sim.report import Record, run_and_report
from sim.sweep import RunRow, _grid, summarise, to_target

__all__ = ["run_sweep", "sweep_rows"]

log = logging.getLogger(__name__)

_SWEEP_ONLY = {"topologies", "codecs", "failures", "seeds", "target_acc", "target_distance", "out"}


def _label(config: SimConfig) -> str:
    return f"{config.topology} {config.codec} {config.failures.describe()}"


def sweep_rows(
    grid: list[SimConfig], *, target_acc: float | None, target_distance: float, quiet: bool
) -> tuple[list[RunRow], list[tuple[SimConfig, list[Record]]]]:
    """Run every config; return one row per run and every run's records."""
    rows, curves = [], []
    total = len(grid) * grid[0].rounds
    with Progress(total, enabled=False if quiet else None) as bar:
        for index, config in enumerate(grid):
            offset = index * config.rounds
            label = _label(config)

            def show(stats: RoundStats, offset: int = offset, label: str = label) -> None:
                bar.update(offset + stats.round, label)

            result = run_and_report(config, on_round=show)
            final = result.records[-1]
            metric = result.summary["metric"]
            assert isinstance(metric, dict)
            key = str(metric["key"])
            rounds, spent = to_target(
                result.records,
                target_acc=target_acc,
                target_distance=target_distance,
                key=key,
                higher=bool(metric["higher_is_better"]),
            )
            gap = result.summary["spectral_gap"]
            rows.append(
                RunRow(
                    topology=config.topology,
                    codec=config.codec,
                    gamma=float(str(result.summary["gamma"])),
                    failures=config.failures.describe(),
                    seed=config.seed,
                    final_acc=None if final.get(key) is None else float(final[key] or 0.0),
                    final_distance=float(final["consensus_distance"] or 0.0),
                    rounds_to_target=rounds,
                    bytes_to_target=spent,
                    bytes_total=int(final["bytes_sent"] or 0),
                    spectral_gap=gap if isinstance(gap, float) else None,
                    wall_s=float(str(result.summary["wall_s"])),
                    metric=str(metric["name"]),
                )
            )
            curves.append((config, result.records))
    return rows, curves


def _write(
    writer: RunWriter, rows: list[RunRow], curves: list[tuple[SimConfig, list[Record]]]
) -> None:
    with writer.path("sweep.csv").open("w", newline="") as handle:
        fields = [f.name for f in dataclasses.fields(RunRow)]
        out = csv.DictWriter(handle, fieldnames=fields)
        out.writeheader()
        for row in rows:
            out.writerow(dataclasses.asdict(row))
    with writer.path("curves.jsonl").open("w") as handle:
        for config, records in curves:
            for record in records:
                line = {
                    "topology": config.topology,
                    "codec": config.codec,
                    "seed": config.seed,
                    "failures": config.failures.describe(),
                    **record,
                }
                handle.write(json.dumps(line) + "\n")
    from sim.plots import plot_curves

    seen: dict[str, list[Record]] = {}
    for config, records in curves:
        seen.setdefault(_label(config), records)  # first seed of each setting
    key = next((k for k in curves[0][1][-1] if k.endswith("_mean")), None)
    metric = key if key is not None and curves[0][1][-1][key] is not None else "consensus_distance"
    first = curves[0][0]
    title = f"{first.task}, {first.peers} peers, {first.partition} (first seed of each setting)"
    plot_curves(list(seen.items()), writer.path("comparison.png"), metric=metric, title=title)


def run_sweep(args: argparse.Namespace) -> int:
    """Handler of ``rumor sweep``."""
    base = config_from_settings(settings_from_args(args, skip=_SWEEP_ONLY))
    grid = _grid(args, base)
    apply_threads(args)
    if args.target_distance is not None and not (0 < args.target_distance < 1):
        raise ConfigError(f"--target-distance must be in (0, 1), got {args.target_distance}")
    accuracy = base.metric == "accuracy"
    if args.target_acc is not None and not (0 < args.target_acc <= (1 if accuracy else math.inf)):
        bound = "(0, 1]" if accuracy else "> 0"
        raise ConfigError(f"--target-acc must be {bound}, got {args.target_acc}")
    writer = None if args.out is None else RunWriter(args.out)
    try:
        rows, curves = sweep_rows(
            grid,
            target_acc=args.target_acc,
            target_distance=args.target_distance,
            quiet=args.quiet,
        )
        if writer is not None:
            _write(writer, rows, curves)
            writer.commit()
    finally:
        if writer is not None:
            writer.__exit__(None, None, None)
    for line in summarise(rows):
        print(line)
    if writer is not None:
        print(f"wrote {args.out}/sweep.csv, curves.jsonl and comparison.png")
    return 0 if all(math.isfinite(r.final_distance) for r in rows) else 1
