"""``rumor up`` arguments, validated into :class:`UpConfig`, and the per-peer configs from it."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from peer.config import PeerConfig, apply_overrides, config_from_dict
from peer.tasks.plugin import is_plugin
from peer.up.byzantine import SwarmAttack, parse_swarm_attack
from peer.up.failures import UpFailures, add_failure_arguments, failures_from_args
from peer.up.material import Sections, Security
from peer.watch import parse_address
from protocol.defaults import BATCH_SIZE, LEARNING_RATE, LOCAL_STEPS
from protocol.errors import ConfigError
from protocol.privacy_params import parse_dp
from protocol.topics import peer_name

__all__ = [
    "BROKER_MAX_PACKET",
    "UpConfig",
    "add_up_arguments",
    "check_plugins",
    "peer_configs",
    "threads_per_peer",
    "up_config",
    "validate_swarm",
]


BROKER_MAX_PACKET = 1024 * 1024
"""The packet limit of the broker ``rumor up`` starts: a client cannot make the broker take, or
the peers receive, one message larger than this. Its peers chunk just below it (see
:func:`peer_configs`), not at the 124 KiB default that fits AWS IoT Core."""
_HEADER_ROOM = 512
"""Room for the MQTT fixed header, topic and properties around each chunk."""


@dataclass(frozen=True, kw_only=True)
class UpConfig:
    peers: int
    topology: str
    rounds: int
    task: str
    model: str
    partition: str
    out: Path
    broker: tuple[str, int] | None = None
    """An external broker; None: start a Mosquitto on a free loopback port."""
    swarm: str = "local"
    seed: int = 0
    local_steps: int = LOCAL_STEPS
    batch_size: int = BATCH_SIZE
    lr: float = LEARNING_RATE
    data: str | None = None
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    optimizer: str = "sgd"
    codec: str = "raw"
    aggregator: str = "mean"
    dp: str | None = None
    """Local differential privacy ``clip=C,sigma=S[,delta=D]`` for every peer ([privacy])."""
    mode: str = "sync"
    round_timeout_s: float = 10.0
    max_packet_size: int | None = None
    """Mosquitto's packet limit (a started broker only), to exercise chunking."""
    threads: int | None = None
    """torch's intra-op threads per peer; None: :func:`threads_per_peer`, 0: torch's default."""
    security: Security = "signed"
    """signed (default): every peer signs, signatures required; secure: TLS with client
    certificates and per-peer ACL too; insecure: neither."""
    overrides: tuple[str, ...] = field(default_factory=tuple)
    byzantine: SwarmAttack | None = None
    """Peers started with ``rumor peer --attack`` (robustness tests)."""
    failures: UpFailures = field(default_factory=UpFailures)
    """Failures to inject (:mod:`peer.up.failures`)."""
    eval_every: int = 10
    """rounds.jsonl: evaluate the peers' snapshots every this many rounds (and the last)."""

    def __post_init__(self) -> None:
        self.failures.check(self.peers, self.rounds)
        if self.failures.outage is not None and self.broker is not None:
            raise ConfigError("--broker-outage stops the broker rumor up starts; not with --broker")
        if self.eval_every < 1:
            raise ConfigError(f"--eval-every {self.eval_every}: expected at least 1")
        if self.peers < 2:
            raise ConfigError(f"--peers {self.peers}: expected at least 2")
        if self.rounds < 1:
            raise ConfigError(f"--rounds {self.rounds}: expected at least 1")
        if self.security == "secure" and self.broker is not None:
            raise ConfigError(
                "--secure with --broker: --secure starts its own TLS broker; for an external "
                "one, generate the material with rumor secure init"
            )
        attack = None if self.byzantine is None else self.byzantine.attack.name
        if attack == "labelflip" and self.task == "consensus" and self.data is None:
            raise ConfigError("--byzantine: labelflip needs class labels; consensus has none")
        if self.dp is not None:
            parse_dp(self.dp)  # a ConfigError naming --dp, before anything starts
        if self.threads is not None and self.threads < 0:
            raise ConfigError(f"--threads {self.threads}: expected 0 (torch's default) or more")


def threads_per_peer(peers: int, cpus: int | None = None) -> int:
    """Each peer's share of this machine's cores (at least one): N processes that each run
    one torch thread per core make a small step many times slower than one thread each.

    >>> threads_per_peer(4, cpus=2), threads_per_peer(4, cpus=16)
    (1, 4)
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) // peers)


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--peers", type=int, default=8, help="number of peer processes (default: %(default)s)")
    add("--topology", default="ring", help="graph family, e.g. torus (default: %(default)s)")
    add("--rounds", type=int, default=20, help="gossip rounds (default: %(default)s)")
    add("--task", default="fmnist", help="fmnist, mnist, synthetic, consensus, module:function")
    add(
        "--model",
        default="mlp",
        help="logreg, mlp[:hidden=H], cnn or a torch.nn.Module plug-in "
        "package.module:function[:key=value,...] (default: %(default)s)",
    )
    add(
        "--data",
        help="data plug-in package.module:function[:key=value,...] or npz:path=FILE; "
        "replaces --task",
    )
    add("--loss", default="cross_entropy", help="cross_entropy, mse or package.module:function")
    add("--metric", default="accuracy", help="accuracy, mse or package.module:function")
    add("--optimizer", default="sgd", help="sgd[:momentum=M,weight_decay=W], adam or adamw")
    add("--partition", default="iid", help="iid, dirichlet:alpha=A, shards:k=K (default: iid)")
    add("--broker", metavar="HOST:PORT", help="use this broker instead of starting Mosquitto")
    add("--out", type=Path, default=Path("rumor-up"), help="run directory (default: %(default)s)")
    add("--swarm", default="local", help="swarm name (default: %(default)s)")
    add("--seed", type=int, default=0, help="data, init and codec seed (default: 0)")
    add(
        "--local-steps",
        type=int,
        default=LOCAL_STEPS,
        help="SGD steps per round (default: %(default)s)",
    )
    add("--batch-size", type=int, default=BATCH_SIZE, help="minibatch size (default: %(default)s)")
    add("--lr", type=float, default=LEARNING_RATE, help="learning rate (default: %(default)s)")
    add("--codec", default="raw", help="raw, fp16, int8, sign, topk:fraction=F, randk:fraction=F")
    add(
        "--aggregator",
        default="mean",
        help="mean (default), clip[:tau=T|b=B,fade=false], trimmed_mean:b=B or median",
    )
    add(
        "--dp",
        metavar="clip=C,sigma=S[,delta=D]",
        help="local differential privacy on every peer: clip each update to L2 norm C, add "
        "Gaussian noise of std S*C; epsilon per peer in the table (docs/privacy.md)",
    )
    add(
        "--threads",
        type=int,
        help="torch intra-op threads per peer (default: the machine's cores // peers, at "
        "least 1; 0: torch's default, one per core)",
    )
    add("--mode", choices=["sync", "async"], default="sync", help="gossip mode (default: sync)")
    add("--round-timeout", type=float, default=10.0, help="sync barrier timeout, s (default: 10)")
    add("--max-packet-size", type=int, help="Mosquitto's max_packet_size (a started broker only)")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument(
        "--secure",
        dest="security",
        action="store_const",
        const="secure",
        default="signed",
        help="TLS with per-peer client certificates and ACL, plus signed frames",
    )
    trust.add_argument(
        "--insecure",
        dest="security",
        action="store_const",
        const="insecure",
        help="no signatures (by default every peer signs and requires signatures)",
    )
    add(
        "--byzantine",
        metavar="K[:attack=A,...]",
        help="robustness tests: K peers, chosen by --seed, attack the swarm with A: signflip "
        "(default), noise, alie, ipm, dissensus or labelflip (docs/robustness.md)",
    )
    add(
        "--eval-every",
        type=int,
        default=10,
        help="rounds.jsonl: evaluate every E rounds on the whole test set (default: 10)",
    )
    add_failure_arguments(parser)
    add(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a value in every peer's config (repeatable)",
    )


def up_config(args: argparse.Namespace) -> UpConfig:
    return UpConfig(
        peers=args.peers,
        topology=args.topology,
        rounds=args.rounds,
        task=args.task,
        model=args.model,
        partition=args.partition,
        out=args.out,
        broker=None if args.broker is None else parse_address(args.broker),
        swarm=args.swarm,
        seed=args.seed,
        local_steps=args.local_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        data=args.data,
        loss=args.loss,
        metric=args.metric,
        optimizer=args.optimizer,
        codec=args.codec,
        aggregator=args.aggregator,
        dp=args.dp,
        mode=args.mode,
        round_timeout_s=args.round_timeout,
        max_packet_size=args.max_packet_size,
        threads=args.threads,
        security=args.security,
        overrides=tuple(args.overrides),
        byzantine=None
        if args.byzantine is None
        else parse_swarm_attack(args.byzantine, peers=args.peers, seed=args.seed),
        failures=failures_from_args(args),
        eval_every=args.eval_every,
    )


def peer_configs(
    up: UpConfig, *, host: str, port: int, sections: Sections | None = None
) -> list[PeerConfig]:
    """One validated config per peer (ConfigError naming the key if an option is bad);
    ``sections``: keys to add per peer (:func:`peer.up.material.prepare`)."""
    configs = []
    threads = threads_per_peer(up.peers) if up.threads is None else up.threads
    # The broker rumor up starts takes packets up to its limit: 4 chunks for a 4 MB frame
    # instead of 33 (each costs a PUBACK and the peers' per-packet work).
    packet = up.max_packet_size
    if packet is None and up.broker is None:
        packet = BROKER_MAX_PACKET
    for j in range(up.peers):
        name = peer_name(j)
        data: dict[str, object] = {
            "identity": {"peer": name, "swarm": up.swarm},
            "broker": {"host": host, "port": port, "keepalive_s": 5},
            "topology": {"family": up.topology, "size": up.peers, "node": j, "seed": up.seed},
            "learning": {
                "task": up.task,
                "model": up.model,
                "partition": up.partition,
                "seed": up.seed,
                "local_steps": up.local_steps,
                "batch_size": up.batch_size,
                "lr": up.lr,
                "loss": up.loss,
                "metric": up.metric,
                "optimizer": up.optimizer,
                "threads": threads,
            }
            | ({} if up.data is None else {"data": up.data}),
            "gossip": {
                "mode": up.mode,
                "rounds": up.rounds,
                "codec": up.codec,
                "aggregator": up.aggregator,
                "round_timeout_s": up.round_timeout_s,
                "silence_timeout_s": max(3 * up.round_timeout_s, 10.0),
            },
            "storage": {"checkpoint_dir": str((up.out / name / "checkpoints").resolve())},
        }
        if up.dp is not None:  # no seed: each peer draws a secret one
            data["privacy"] = parse_dp(up.dp).to_dict()
        if packet is not None:
            data["broker"] = {**data["broker"], "max_payload": max(256, packet - _HEADER_ROOM)}  # type: ignore[dict-item]
        for section, keys in (sections or {}).get(name, {}).items():
            data[section] = {**data.get(section, {}), **keys}  # type: ignore[dict-item]
        configs.append(apply_overrides(config_from_dict(data), up.overrides))
    return configs


def check_plugins(config: PeerConfig, *, peers: int) -> None:
    """Build peer 0's learner in this process when the config names a plug-in (model, data,
    loss or metric), so that a bad one fails here, in one line, before anything is launched."""
    learning = config.learning
    named = (learning.model, learning.loss, learning.metric, learning.task)
    if learning.data is None and not any(is_plugin(text) for text in named):
        return
    from peer.runtime.learning import load_learner  # torch: only when there is a plug-in

    load_learner(config, index=0, peers=peers)


def validate_swarm(up: UpConfig) -> None:
    """Every peer's config, validated as the peers will (the graph built, the codec, task, model
    and partition specs and each data share checked), and any plug-in built once in this
    process (:func:`check_plugins`): ConfigError naming the problem, before anything (the broker
    included) is launched."""
    host, port = up.broker if up.broker is not None else ("127.0.0.1", 1883)
    try:
        configs = peer_configs(up, host=host, port=port)
        check_plugins(configs[0], peers=up.peers)
    except ConfigError as exc:
        raise ConfigError(f"no peer started: {exc}") from exc
