"""``rumor sweep``: a grid of runs (topologies x codecs x failure settings x seeds), compared.

The handler builds :class:`~sim.sweep_settings.SweepSettings` from the flags (every bad value is
a one-line error naming the flag, exit status 2, before any run), runs :func:`sim.sweep.run_sweep`
and does the printing and writing itself.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sim.cli_args import add_run_arguments, apply_threads, check_threads, settings_from_args
from sim.config import config_from_settings
from sim.outputs import RunWriter
from sim.progress import Progress

if TYPE_CHECKING:
    from sim.sweep_settings import SweepSettings

__all__ = ["register_sweep"]

DESCRIPTION = """\
Writes DIR/sweep.csv (one row per run), DIR/curves.jsonl (every run's records, labelled) and
DIR/comparison.png (accuracy, or consensus distance, against rounds and bytes per setting), and
prints a table per setting: final accuracy mean +- std over seeds, rounds and bytes to the target
(n/a without one), and the spectral gap. Compression pays in bytes to accuracy, not at equal
rounds: read the ``MB to tgt`` column. Diverged runs are marked, and make the exit status 1."""

SWEEP_EXAMPLES = """\
examples:
  rumor sweep --task fmnist --peers 16 --rounds 400 --partition dirichlet:alpha=0.1 \\
      --topologies complete,exponential,torus,ring --target-acc 0.7 --out runs/topologies
  rumor sweep --task fmnist --topologies ring --codecs raw,sign:gamma=0.6,topk:fraction=0.1 \\
      --rounds 1600 --seeds 0,1,2 --target-acc 0.65 --out runs/codecs
  rumor sweep --task consensus --topologies ring,torus \\
      --failures "none;drop=0.3;drop=0.1+crash=3@20-60"

Lists are comma-separated (a codec's own parameters stay with it); a codec may carry gamma=G.
Failure settings are separated by ';', their parts by '+': none, drop=P, crash=3@50-120,
churn=up=20/down=5 (use '/' inside), partition_window=50-100, stragglers=0.25, byzantine=0.1,
byzantine=0.125:attack=alie/z=1.5.
"""

_SWEEP_ONLY = {"topologies", "codecs", "failures", "seeds", "target_acc", "target_distance", "out"}


def register_sweep(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rumor sweep``."""
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid of simulations and compare them",
        description=DESCRIPTION,
        epilog=SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    add = parser.add_argument
    add("--topologies", help="comma-separated topology specs (default ring)")
    add("--codecs", help="comma-separated codec specs, each optionally with gamma=G")
    add("--failures", help="';'-separated failure settings (default none)")
    add("--seeds", help="comma-separated seeds >= 0 (default 0)")
    add(
        "--target-acc",
        type=float,
        help="metric target for rounds/bytes to target (accuracy: reached at or above it; "
        "a lower-is-better metric such as mse: at or below it)",
    )
    add(
        "--target-distance",
        type=float,
        help="consensus target, relative to the start (consensus task; default 1e-6)",
    )
    add("--out", type=Path, help="write sweep.csv, curves.jsonl and comparison.png here")
    parser.set_defaults(handler=_run_sweep)


def sweep_settings(args: argparse.Namespace) -> SweepSettings:
    """The validated settings of ``rumor sweep`` from its parsed flags (ConfigError if bad)."""
    from sim import sweep_settings as s

    base = config_from_settings(settings_from_args(args, skip=_SWEEP_ONLY))
    return s.SweepSettings(
        base=base,
        topologies=() if args.topologies is None else s.parse_topologies(args.topologies),
        codecs=() if args.codecs is None else s.parse_codecs(args.codecs),
        failures=() if args.failures is None else s.parse_failures(args.failures),
        seeds=() if args.seeds is None else s.parse_seeds(args.seeds),
        target_acc=args.target_acc,
        target_distance=args.target_distance,
    )


def _run_sweep(args: argparse.Namespace) -> int:
    settings = sweep_settings(args)
    check_threads(args.threads)
    from sim.sweep import run_sweep, summarise  # torch: only when sweeping
    from sim.sweep_files import label, write_sweep

    apply_threads(args.threads)
    grid = settings.grid()
    from sim.device import resolve_device

    resolve_device(grid[0].device)  # --device cuda without CUDA fails now, before any run
    rounds = grid[0].rounds
    writer = None if args.out is None else RunWriter(args.out)  # a bad --out fails now
    with writer or contextlib.nullcontext():
        with Progress(len(grid) * rounds, enabled=False if args.quiet else None) as bar:
            result = run_sweep(
                settings,
                on_round=lambda i, config, stats: bar.update(
                    i * rounds + stats.round, label(config)
                ),
            )
        if writer is not None:
            write_sweep(writer, result)
    for line in summarise(result.rows, target=settings.target):
        print(line)
    if args.out is not None:
        print(f"wrote {args.out}/sweep.csv, curves.jsonl and comparison.png")
    for row in result.diverged:
        print(
            f"rumor sweep: {row.topology} {row.codec} {row.failures} seed {row.seed} "
            f"diverged at round {row.diverged}",
            file=sys.stderr,
        )
    return 1 if result.diverged else 0
