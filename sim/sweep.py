"""``rumor sweep``: a grid of runs (topologies x codecs x failure settings x seeds), compared.

Writes DIR/sweep.csv (one row per run), DIR/curves.jsonl (every run's records, labelled) and
DIR/comparison.png (accuracy, or consensus distance, against rounds and bytes per setting), and
prints a table per setting: final accuracy mean +- std over seeds, rounds and bytes to the target,
and the spectral gap. Compression pays in bytes to accuracy, not at equal rounds: read the
``MB to target`` column.

>>> split_list("ring,topk:fraction=0.1,gamma=0.3,sign")
['ring', 'topk:fraction=0.1,gamma=0.3', 'sign']
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec
from sim.config import SimConfig, failures_from_mapping
from sim.failures import FailureConfig

if TYPE_CHECKING:
    from sim.report import Record

__all__ = ["RunRow", "register_sweep", "split_list", "summarise", "to_target"]

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
churn=up=20/down=5 (use '/' inside), partition_window=50-100, stragglers=0.25, byzantine=0.1.
"""


def split_list(text: str) -> list[str]:
    """Split on commas, keeping ``key=value`` fragments with the spec before them."""
    items: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if items and "=" in token and ":" not in token:
            items[-1] += "," + token
        else:
            items.append(token)
    return items


def _codec_and_gamma(text: str) -> tuple[str, float | None]:
    spec = parse_spec(text)
    params = dict(spec.params)
    gamma = params.pop("gamma", None)
    if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, int | float)):
        raise ConfigError(f"gamma in {text!r} must be a number")
    return str(Spec(spec.name, params)), None if gamma is None else float(gamma)


def _failure_setting(text: str) -> FailureConfig:
    if text.strip() in ("", "none"):
        return FailureConfig()
    values: dict[str, object] = {}
    for part in text.split("+"):
        key, eq, value = part.strip().partition("=")
        if not eq:
            raise ConfigError(f"invalid failure setting {part!r}; expected key=value or none")
        key = key.replace("-", "_")
        values[key] = float(value) if key == "drop" else value.replace("/", ",")
    return failures_from_mapping(values)


@dataclass(frozen=True, kw_only=True)
class RunRow:
    topology: str
    codec: str
    gamma: float
    failures: str
    seed: int
    final_acc: float | None
    """The final mean metric (accuracy unless configured otherwise; see ``metric``)."""
    final_distance: float
    rounds_to_target: int | None
    bytes_to_target: int | None
    bytes_total: int
    spectral_gap: float | None
    wall_s: float
    metric: str = "accuracy"

    @property
    def setting(self) -> tuple[str, str, str]:
        return (self.topology, self.codec, self.failures)


def to_target(
    records: Sequence[Record],
    *,
    target_acc: float | None,
    target_distance: float,
    key: str = "acc_mean",
    higher: bool = True,
) -> tuple[int | None, int | None]:
    """First evaluated (round, cumulative bytes) at the target, or (None, None).

    ``target_acc`` is a target for the metric under ``key``: reached at or above it when higher
    is better, at or below it otherwise (an MSE target, say).

    >>> recs = [{"round": 0, "acc_mean": 0.1, "bytes_sent": 0, "consensus_distance": 1.0},
    ...         {"round": 5, "acc_mean": 0.8, "bytes_sent": 50, "consensus_distance": 0.1}]
    >>> to_target(recs, target_acc=0.7, target_distance=1e-3)
    (5, 50)
    """
    start = records[0]["consensus_distance"] or 0.0
    for record in records:
        acc, dist = record.get(key), record.get("consensus_distance")
        reached = (
            acc is not None and (acc >= target_acc if higher else acc <= target_acc)
            if target_acc is not None
            else dist is not None and dist <= target_distance * start
        )
        if reached:
            return int(record["round"] or 0), int(record["bytes_sent"] or 0)
    return None, None


def summarise(rows: Sequence[RunRow]) -> list[str]:
    """The printed table: one line per setting, aggregated over seeds."""
    settings: dict[tuple[str, str, str], list[RunRow]] = {}
    for row in rows:
        settings.setdefault(row.setting, []).append(row)
    label = "final " + ("acc" if not rows or rows[0].metric == "accuracy" else rows[0].metric)
    header = f"{'topology':<22} {'codec':<18} {'failures':<14} {label:>16} "
    header += f"{'rounds to tgt':>13} {'MB to tgt':>10} {'MB total':>9} {'gap':>7}"
    lines = [header, "-" * len(header)]
    for (topology, codec, failures), group in settings.items():
        accs = [r.final_acc for r in group if r.final_acc is not None]
        if accs:
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            acc = f"{statistics.mean(accs):.4f} +- {spread:.4f}"
        else:
            acc = f"cd {statistics.mean(r.final_distance for r in group):.2e}"
        hit = [r for r in group if r.rounds_to_target is not None]
        rounds = f"{statistics.mean(r.rounds_to_target or 0 for r in hit):.0f}" if hit else "-"
        mb = f"{statistics.mean((r.bytes_to_target or 0) / 1e6 for r in hit):.2f}" if hit else "-"
        if hit and len(hit) < len(group):
            rounds += f" ({len(hit)}/{len(group)})"
        total = statistics.mean(r.bytes_total / 1e6 for r in group)
        gap = group[0].spectral_gap
        gap_text = "-" if gap is None else f"{gap:.4f}"
        lines.append(
            f"{topology:<22} {codec:<18} {failures:<14} {acc:>16} {rounds:>13} {mb:>10} "
            f"{total:>9.2f} {gap_text:>7}"
        )
    return lines


def _grid(args: argparse.Namespace, base: SimConfig) -> list[SimConfig]:
    topologies = split_list(args.topologies) if args.topologies else [base.topology]
    codecs = split_list(args.codecs) if args.codecs else [base.codec]
    failures = (
        [_failure_setting(t) for t in args.failures.split(";")]
        if args.failures
        else [base.failures]
    )
    seeds = [int(s) for s in split_list(args.seeds)] if args.seeds else [base.seed]
    grid = []
    for topology in topologies:
        for codec_text in codecs:
            codec, gamma = _codec_and_gamma(codec_text)
            for failure in failures:
                for seed in seeds:
                    grid.append(
                        dataclasses.replace(
                            base,
                            topology=topology,
                            codec=codec,
                            gamma=gamma if gamma is not None else base.gamma,
                            failures=failure,
                            seed=seed,
                            out=None,
                        )
                    )
    return grid


def register_sweep(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rumor sweep``."""
    from sim.cli import add_run_arguments

    parser = subparsers.add_parser(
        "sweep",
        help="run a grid of simulations and compare them",
        description=__doc__.split("\n\n>>>")[0] if __doc__ else None,
        epilog=SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    add = parser.add_argument
    add("--topologies", help="comma-separated topology specs (default ring)")
    add("--codecs", help="comma-separated codec specs, each optionally with gamma=G")
    add("--failures", help="';'-separated failure settings (default none)")
    add("--seeds", help="comma-separated seeds (default 0)")
    add(
        "--target-acc",
        type=float,
        help="metric target for rounds/bytes to target (accuracy: reached at or above it; "
        "a lower-is-better metric such as mse: at or below it)",
    )
    add(
        "--target-distance",
        type=float,
        default=1e-6,
        help="consensus target, relative to the start (default 1e-6; consensus task)",
    )
    add("--out", type=Path, help="write sweep.csv, curves.jsonl and comparison.png here")
    parser.set_defaults(handler=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from sim.sweep_run import run_sweep  # torch: only when sweeping

    return run_sweep(args)
