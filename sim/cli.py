"""``rumor sim`` (and the registration of ``rumor sweep``): the simulator's command line.

Each handler turns its arguments into frozen configs at once (bad input raises ConfigError, which
the dispatcher reports in one line with exit status 2, before any output directory exists). The
handlers print; the runs themselves (:mod:`sim.report`, :mod:`sim.sweep`) only return results.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sim.cli_args import (
    add_failure_arguments,
    add_run_arguments,
    apply_threads,
    check_threads,
    settings_from_args,
)
from sim.compare_cli import register_compare
from sim.config import SimConfig, config_from_settings
from sim.progress import Progress
from sim.sweep_cli import register_sweep

if TYPE_CHECKING:
    from sim.metrics import SwarmRoundStats
    from sim.report import RunResult

__all__ = ["register"]

log = logging.getLogger(__name__)

SIM_EXAMPLES = """\
examples:
  rumor sim --task consensus --topology ring --peers 16 --rounds 200
  rumor sim --task fmnist --model mlp:hidden=64 --topology torus --peers 16 --rounds 400 \\
      --partition dirichlet:alpha=0.1 --lr 0.05 --eval-every 20 --out runs/torus
  rumor sim --task synthetic --peers 1024 --topology random_regular:d=4 --codec sign \\
      --drop 0.1 --crash 3@50-120 --churn up=40,down=10 --stragglers 0.2:steps=0
  rumor sim --task fmnist --model logreg --local-steps 10 --rounds 50 \
      --dp clip=0.1,sigma=1   # local differential privacy; epsilon per peer at the end
  rumor sim --config run.toml --seed 3 --out runs/seed3   # CLI flags override the file

failure formats:
  --drop P                     each message is lost with probability P
  --crash PEER@ROUND[-RECOVER] peer down from ROUND (until RECOVER); repeat or comma-separate
  --churn up=U,down=D[,fraction=F]  geometric up/down periods with mean U and D rounds
  --partition-window START-END[:fraction=F]  cut peers 0..F*N-1 from the rest in [START, END)
  --stragglers FRACTION[:steps=S]  a fixed set of peers does S local steps (default half)
  --byzantine FRACTION[:attack=A,key=value]  a seeded set of attacking peers; A is one of
      signflip[:scale=S], noise[:scale=S], alie[:z=Z], ipm[:eps=E], dissensus[:eps=E],
      labelflip (docs/robustness.md), e.g. --byzantine 0.125:attack=alie,z=1.5
  --availability FRACTION[:period=P,window=W]  peers that train W rounds in every P (paused)
"""


def _describe(stats: SwarmRoundStats, label: str) -> str:
    acc = "" if stats.acc_mean is None else f" {label} {stats.acc_mean:.3f}"
    cd = "" if stats.consensus_distance is None else f"cd {stats.consensus_distance:.3g} "
    return f"{cd}{acc} {stats.bytes_sent / 1e6:.1f} MB".strip()


def _run_sim(args: argparse.Namespace) -> int:
    config = config_from_settings(settings_from_args(args, skip=set()))
    check_threads(args.threads)
    from sim.metrics import metric_prefix
    from sim.report import run_and_report  # torch: only when simulating

    apply_threads(args.threads)
    label = metric_prefix(config.metric)
    with Progress(config.rounds, enabled=False if args.quiet else None) as bar:
        result = run_and_report(config, on_round=lambda s: bar.update(s.round, _describe(s, label)))
    _print_result(result)
    if result.profile is not None:
        from sim.profile import format_profile

        print(format_profile(result.profile))
    if result.diverged is not None:
        print(
            f"rumor sim: diverged at round {result.diverged}: some parameters are no longer "
            f"finite (lr {config.lr:g}); the run stopped there",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_result(result: RunResult) -> None:
    config, summary = result.config, result.summary
    metric = summary["metric"]
    higher = not isinstance(metric, dict) or bool(metric.get("higher_is_better", True))
    print(_final_line(config, result.records[-1], summary["spectral_gap"], higher=higher))
    if summary["spectral_gap"] is None and summary["spectral_gap_note"] is not None:
        print(f"spectral gap not reported: {summary['spectral_gap_note']}")
    from sim.privacy_report import privacy_line

    privacy = privacy_line(summary.get("privacy"))
    if privacy is not None:
        print(privacy)
    contraction = result.summary.get("contraction")
    if isinstance(contraction, dict) and contraction.get("measured") is not None:
        predicted = contraction.get("predicted")
        theory = "" if predicted is None else f"; theory (1 - rho)^2 = {predicted:.5f}"
        print(f"consensus distance shrinks by {contraction['measured']:.5f} per round{theory}")
    if result.out is not None:
        print(f"wrote {result.out}/rounds.jsonl, summary.json and {len(result.plots)} plot(s)")


def _final_line(
    config: SimConfig, final: dict[str, float | int | None], gap: object, *, higher: bool
) -> str:
    from sim.metrics import metric_prefix

    head = f"{config.data or config.task} {config.topology} n={config.peers} {config.codec}"
    parts = []
    m = metric_prefix(config.metric)
    if final.get(f"{m}_mean") is not None:
        worst = final[f"{m}_min"] if higher else final[f"{m}_max"]
        parts.append(
            f"{m} mean {final[f'{m}_mean']:.4f} ({'min' if higher else 'max'} {worst:.4f}, "
            f"avg model {final[f'{m}_avg_model']:.4f}; {'higher' if higher else 'lower'} "
            "is better)"
        )
    honest = final.get(f"{m}_honest_mean")
    if honest is not None:
        parts.append(f"honest peers {m} mean {honest:.4f}")
    distance = final["consensus_distance"]
    parts.append("consensus distance " + ("n/a" if distance is None else f"{distance:.3e}"))
    parts.append(f"{int(final['bytes_sent'] or 0) / 1e6:.2f} MB sent")
    if isinstance(gap, float):
        parts.append(f"spectral gap {gap:.4f}")
    return f"{head} after {final['round']} rounds: " + ", ".join(parts)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rumor sim`` and ``rumor sweep`` to the dispatcher."""
    parser = subparsers.add_parser(
        "sim",
        help="simulate a swarm on this machine",
        description="Simulate N gossip peers (CHOCO-SGD over a topology) with failures, "
        "and record accuracy, consensus distance and exact bytes per round.",
        epilog=SIM_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--topology",
        help="NAME[:k=v,...]: a graph family (ring, torus, complete, random_regular:d=4, ...) "
        "or a schedule (one_peer_exponential, random_matching)",
    )
    parser.add_argument("--seed", type=int, help="seed for data, init, failures (default 0)")
    parser.add_argument("--codec", help="raw, fp16, int8, sign, topk:fraction=F, randk:fraction=F")
    add_failure_arguments(parser)
    parser.add_argument(
        "--profile",
        action="store_true",
        default=None,
        help="time each phase of a round (failures, train, compress, mix, bookkeeping, "
        "evaluate); printed at the end and written to OUT/profile.json",
    )
    parser.add_argument("--out", type=Path, help="write rounds.jsonl, summary.json, plots here")
    parser.set_defaults(handler=_run_sim)
    register_sweep(subparsers)
    register_compare(subparsers)
