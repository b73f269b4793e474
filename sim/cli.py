"""``rumor sim`` and ``rumor sweep``: the simulator's command line.

Each handler turns its arguments into frozen configs at once (bad input raises ConfigError, which
the dispatcher reports in one line with exit status 2, before any output directory exists).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.errors import ConfigError
from sim.config import ENGINES, TASKS, SimConfig, config_from_settings, load_toml
from sim.progress import Progress

if TYPE_CHECKING:
    from sim.metrics import RoundStats

__all__ = ["add_run_arguments", "apply_threads", "register", "settings_from_args"]

log = logging.getLogger(__name__)

SIM_EXAMPLES = """\
examples:
  rumor sim --task consensus --topology ring --peers 16 --rounds 200
  rumor sim --task fmnist --model mlp:hidden=64 --topology torus --peers 16 --rounds 400 \\
      --partition dirichlet:alpha=0.1 --lr 0.05 --eval-every 20 --out runs/torus
  rumor sim --task synthetic --peers 1024 --topology random_regular:d=4 --codec sign \\
      --drop 0.1 --crash 3@50-120 --churn up=40,down=10 --stragglers 0.2:steps=0
  rumor sim --config run.toml --seed 3 --out runs/seed3   # CLI flags override the file

failure formats:
  --drop P                     each message is lost with probability P
  --crash PEER@ROUND[-RECOVER] peer down from ROUND (until RECOVER); repeat or comma-separate
  --churn up=U,down=D[,fraction=F]  geometric up/down periods with mean U and D rounds
  --partition-window START-END[:fraction=F]  cut peers 0..F*N-1 from the rest in [START, END)
  --stragglers FRACTION[:steps=S]  a fixed set of peers does S local steps (default half)
  --byzantine FRACTION[:attack=signflip|noise,scale=S]  peers that publish attacked models
"""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``sim`` and ``sweep`` (defaults live in SimConfig, so all default None)."""
    add = parser.add_argument
    add("--config", type=Path, metavar="TOML", help="read settings from a TOML run file")
    add("--task", help=f"{', '.join(TASKS)} or package.module:function (default consensus)")
    add(
        "--model",
        help="logreg, mlp[:hidden=H], cnn, or a torch.nn.Module plug-in "
        "package.module:function[:key=value,...] (default: per task)",
    )
    add(
        "--data",
        help="data plug-in package.module:function[:key=value,...] called as "
        "function(peer, peers, seed) -> (train, test), or npz:path=FILE; replaces --task",
    )
    add("--loss", help="cross_entropy (default), mse or package.module:function")
    add("--metric", help="accuracy (default, higher is better), mse (lower) or a plug-in")
    add(
        "--optimizer",
        help="sgd[:momentum=M,weight_decay=W] (default sgd), adam[:...] or adamw[:...]",
    )
    add("--peers", type=int, help="number of peers (default 16)")
    add("--rounds", type=int, help="gossip rounds (default 100)")
    add("--partition", help="iid, dirichlet:alpha=A or shards:k=K (default iid)")
    add("--gamma", type=float, help="CHOCO consensus step (default: the codec's safe default)")
    add("--keyframe-interval", type=int, help="every K-th frame is a raw keyframe (default 10)")
    add("--local-steps", type=int, help="SGD steps per round (default 1)")
    add("--batch-size", type=int, help="minibatch size (default 32)")
    add("--lr", type=float, help="learning rate (default 0.05)")
    add("--engine", help=f"{' or '.join(ENGINES)}: batched (default) or the reference loop")
    add("--eval-every", type=int, help="evaluate on the test set every E rounds (default 10)")
    add("--dim", type=int, help="vector length of the consensus task (default 32)")
    add("--data-path", help="directory with the IDX files (mnist; overrides fmnist's)")
    add("--quiet", action="store_true", help="no progress bar")
    add(
        "--threads",
        type=int,
        help="torch threads (default: torch's choice; 1 is often "
        "faster for small models on a busy machine)",
    )


def _add_failure_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--drop", type=float, help="message drop probability per link and round")
    add("--crash", action="append", metavar="PEER@ROUND[-RECOVER]", help="crash schedule")
    add("--churn", metavar="up=U,down=D", help="on/off churn with mean durations in rounds")
    add("--partition-window", metavar="START-END", help="cut the network in two for a window")
    add("--stragglers", metavar="FRACTION[:steps=S]", help="a fraction doing fewer local steps")
    add("--byzantine", metavar="FRACTION[:attack=A]", help="peers publishing attacked models")


_NOT_SETTINGS = {"handler", "command", "log_level", "config", "quiet", "threads"}


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``--threads`` (ConfigError if not positive)."""
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        import torch  # here, not at import: the dispatcher loads every command's parser

        torch.set_num_threads(args.threads)


def settings_from_args(args: argparse.Namespace, *, skip: set[str]) -> dict[str, object]:
    """TOML settings (if ``--config``), overridden by every flag the user gave."""
    settings: dict[str, object] = {} if args.config is None else dict(load_toml(args.config))
    for key, value in vars(args).items():
        if key in _NOT_SETTINGS or key in skip or value is None:
            continue
        settings[key] = ",".join(value) if key == "crash" else value
    return settings


def _describe(stats: RoundStats, label: str) -> str:
    acc = "" if stats.acc_mean is None else f" {label} {stats.acc_mean:.3f}"
    cd = "" if stats.consensus_distance is None else f"cd {stats.consensus_distance:.3g} "
    return f"{cd}{acc} {stats.bytes_sent / 1e6:.1f} MB".strip()


def _run_sim(args: argparse.Namespace) -> int:
    config = config_from_settings(settings_from_args(args, skip=set()))
    apply_threads(args)
    with Progress(config.rounds, enabled=False if args.quiet else None) as bar:
        from sim.metrics import metric_prefix
        from sim.report import run_and_report  # torch: only when simulating

        label = metric_prefix(config.metric)
        result = run_and_report(config, on_round=lambda s: bar.update(s.round, _describe(s, label)))
    final = result.records[-1]
    metric = result.summary.get("metric")
    higher = not isinstance(metric, dict) or bool(metric.get("higher_is_better", True))
    print(_final_line(config, final, result.summary.get("spectral_gap"), higher=higher))
    contraction = result.summary.get("contraction")
    if isinstance(contraction, dict) and contraction.get("measured") is not None:
        predicted = contraction.get("predicted")
        theory = "" if predicted is None else f"; theory (1 - rho)^2 = {predicted:.5f}"
        print(f"consensus distance shrinks by {contraction['measured']:.5f} per round{theory}")
    if result.out is not None:
        print(f"wrote {result.out}/rounds.jsonl, summary.json and {len(result.plots)} plot(s)")
    return 0


def _final_line(
    config: SimConfig, final: dict[str, float | int | None], gap: object, *, higher: bool
) -> str:
    head = f"{config.data or config.task} {config.topology} n={config.peers} {config.codec}"
    parts = []
    from sim.metrics import metric_prefix

    m = metric_prefix(config.metric)
    if final.get(f"{m}_mean") is not None:
        worst = final[f"{m}_min"] if higher else final[f"{m}_max"]
        parts.append(
            f"{m} mean {final[f'{m}_mean']:.4f} ({'min' if higher else 'max'} {worst:.4f}, "
            f"avg model {final[f'{m}_avg_model']:.4f}; {'higher' if higher else 'lower'} "
            "is better)"
        )
    parts.append(f"consensus distance {final['consensus_distance']:.3e}")
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
    _add_failure_arguments(parser)
    parser.add_argument("--out", type=Path, help="write rounds.jsonl, summary.json, plots here")
    parser.set_defaults(handler=_run_sim)

    from sim.sweep import register_sweep

    register_sweep(subparsers)
