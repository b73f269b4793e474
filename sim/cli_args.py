"""Flags shared by ``rumor sim`` and ``rumor sweep``, and the settings they turn into.

Torch-free: the dispatcher imports this to build its parser. Defaults live in
:class:`sim.config.SimConfig`, so every setting flag defaults to None ("not given").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from protocol.defaults import BATCH_SIZE, CONSENSUS_DIM, LEARNING_RATE, LOCAL_STEPS
from protocol.errors import ConfigError
from sim.config import ENGINES, TASKS, load_toml

__all__ = [
    "add_failure_arguments",
    "add_run_arguments",
    "apply_threads",
    "check_threads",
    "settings_from_args",
]

_NOT_SETTINGS = {"handler", "command", "log_level", "config", "quiet", "threads"}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``sim`` and ``sweep``."""
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
    add(
        "--aggregator",
        help="how a peer combines its neighbours' copies: mean (default), "
        "clip[:tau=T|b=B,fade=false], trimmed_mean:b=B or median",
    )
    add(
        "--dp",
        metavar="clip=C,sigma=S[,delta=D]",
        help="local differential privacy: clip each update to L2 norm C, add Gaussian noise of "
        "std S*C per coordinate, report epsilon at delta (default 1e-5); see docs/privacy.md",
    )
    add("--keyframe-interval", type=int, help="every K-th frame is a raw keyframe (default 10)")
    add("--local-steps", type=int, help=f"SGD steps per round (default {LOCAL_STEPS})")
    add("--batch-size", type=int, help=f"minibatch size (default {BATCH_SIZE})")
    add("--lr", type=float, help=f"learning rate (default {LEARNING_RATE})")
    add(
        "--engine",
        choices=ENGINES,
        help="vector: all peers batched (default); loop: the reference, one peer at a time",
    )
    add("--eval-every", type=int, help="evaluate on the test set every E rounds (default 10)")
    add("--dim", type=int, help=f"vector length of the consensus task (default {CONSENSUS_DIM})")
    add("--data-path", help="directory with the IDX files (mnist; overrides fmnist's)")
    add(
        "--device",
        help="cpu (default), cuda[:K] or auto (cuda when available): where the peers' data, "
        "models and mixing live",
    )
    add("--quiet", action="store_true", help="no progress bar")
    add(
        "--threads",
        type=int,
        help="torch threads (default: torch's choice; 1 is often "
        "faster for small models on a busy machine)",
    )


def add_failure_arguments(parser: argparse.ArgumentParser) -> None:
    """``rumor sim``'s failure flags (``rumor sweep`` takes ``--failures`` lists instead)."""
    add = parser.add_argument
    add("--drop", type=float, help="message drop probability per link and round")
    add("--crash", action="append", metavar="PEER@ROUND[-RECOVER]", help="crash schedule")
    add("--churn", metavar="up=U,down=D", help="on/off churn with mean durations in rounds")
    add("--partition-window", metavar="START-END", help="cut the network in two for a window")
    add("--stragglers", metavar="FRACTION[:steps=S]", help="a fraction doing fewer local steps")
    add(
        "--byzantine",
        metavar="FRACTION[:attack=A,...]",
        help="attacking peers: signflip, noise, alie, ipm, dissensus or labelflip",
    )
    add(
        "--availability",
        metavar="FRACTION[:period=P,window=W]",
        help="a fraction of peers that train only W rounds in every P (default 8 in 24)",
    )


def check_threads(threads: int | None) -> None:
    """ConfigError unless ``--threads`` is absent or positive."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")


def apply_threads(threads: int | None) -> None:
    """Set torch's thread count from ``--threads`` (checked by :func:`check_threads`)."""
    check_threads(threads)
    if threads is not None:
        import torch  # here, not at import: the dispatcher loads every command's parser

        torch.set_num_threads(threads)


def settings_from_args(args: argparse.Namespace, *, skip: set[str]) -> dict[str, object]:
    """TOML settings (if ``--config``), overridden by every flag the user gave."""
    settings: dict[str, object] = {} if args.config is None else dict(load_toml(args.config))
    for key, value in vars(args).items():
        if key in _NOT_SETTINGS or key in skip or value is None:
            continue
        settings[key] = ",".join(value) if key == "crash" else value
    return settings
