"""The peer package's subcommands: ``rumor peer``, ``up``, ``watch``, ``export``, ``secure``.

Each handler turns its arguments into a frozen config at once and hands that on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from peer.cli import Subparsers
from peer.config import apply_overrides, load_config, to_toml
from peer.export_cli import add_export_arguments, run_export
from peer.fleet.cli import add_init_parser
from peer.security.cli import add_secure_parser
from peer.stopping import StopSignals
from peer.up import add_up_arguments, run_up
from peer.watch import add_watch_arguments, run_watch
from protocol.attack_names import check_attack_spec

__all__ = ["register"]

log = logging.getLogger("rumor.peer")

_PEER_EXAMPLES = """\
examples:
  rumor peer --config peer.toml
  rumor peer --config peer.toml --set gossip.rounds=50 --set gossip.codec=sign --print-config
  rumor peer --config peer.toml --stats-file stats.jsonl
  rumor peer --config peer.toml --attack alie:z=1.5   # a compromised peer, for robustness tests

docs/config.md documents every key. SIGTERM or Ctrl-C: finish the step, checkpoint, publish
offline, exit 0. Exit status 2 for a bad config (the error names the key).
"""

_UP_EXAMPLES = """\
examples:
  rumor up --peers 8 --topology ring --rounds 100 --partition dirichlet:alpha=0.1
  rumor up --peers 16 --topology random_regular:d=4 --codec sign --out runs/sign16
  rumor up --peers 9 --topology torus --broker broker.lan:1883 --swarm lab
  rumor up --peers 6 --topology complete --aggregator clip --byzantine 1:attack=alie

Writes one config and log per peer under --out, and --out/summary.json at the end. Ctrl-C stops
every process it started, and the broker.
"""

_WATCH_EXAMPLES = """\
examples:
  rumor watch --broker 127.0.0.1:1883 --swarm local
  rumor watch --broker broker.lan:1883 --swarm lab --once --duration 5
  rumor watch --broker 127.0.0.1:1883 --swarm local --duration 60 > swarm.log

On a terminal the table is redrawn in place; otherwise one line per update. Exit status 1 when
the broker cannot be reached within --connect-timeout, 2 for bad arguments.
"""


def register(subparsers: Subparsers) -> None:
    """Add ``peer``, ``up``, ``watch`` and ``export`` to the ``rumor`` command."""
    peer = subparsers.add_parser(
        "peer",
        help="run one gossip peer daemon from a TOML config",
        description="Run one peer: train on local data, gossip with neighbours over MQTT.",
        epilog=_PEER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    peer.add_argument("--config", type=Path, required=True, help="the peer's TOML config file")
    peer.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (TOML syntax; repeatable)",
    )
    peer.add_argument(
        "--print-config", action="store_true", help="print the effective config and exit"
    )
    peer.add_argument(
        "--stats-file", type=Path, help="append each round's stats to this file as JSON lines"
    )
    peer.add_argument(
        "--attack",
        metavar="SPEC",
        help="robustness tests only: this peer attacks its swarm with signflip[:scale=S], "
        "noise[:scale=S], alie[:z=Z], ipm[:eps=E], dissensus[:eps=E] or labelflip "
        "(docs/robustness.md)",
    )
    peer.set_defaults(handler=_peer)

    up = subparsers.add_parser(
        "up",
        help="run a local swarm: a broker and N peer processes",
        description="Start Mosquitto (unless --broker) and N peer processes on this machine.",
        epilog=_UP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_up_arguments(up)
    up.set_defaults(handler=run_up)

    watch = subparsers.add_parser(
        "watch",
        help="live table of a swarm from its telemetry and presence",
        description="Show a swarm's peers (round, loss, accuracy, traffic) from any broker.",
        epilog=_WATCH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_watch_arguments(watch)
    watch.set_defaults(handler=run_watch)
    add_secure_parser(subparsers)
    add_init_parser(subparsers)

    export = subparsers.add_parser(
        "export", help="write a peer's model from its checkpoint as a .safetensors file"
    )
    add_export_arguments(export)
    export.set_defaults(handler=run_export)


def _peer(args: argparse.Namespace) -> int:
    signals = StopSignals.install()  # first: a stop during start-up must end in exit 0 too
    try:
        config = apply_overrides(load_config(args.config), args.overrides)
        attack = None if args.attack is None else check_attack_spec(args.attack)
        if args.print_config:
            sys.stdout.write(to_toml(config))
            return 0
        from peer.runtime.daemon import configure_logging, run_peer  # torch: only when running

        configure_logging(config)
        if attack is not None:
            log.warning(
                "%s ATTACKS its swarm: --attack %s (fault injection for robustness tests)",
                config.identity.peer,
                attack,
            )
        return asyncio.run(
            run_peer(config, stats_file=args.stats_file, signals=signals, attack=attack)
        )
    finally:
        signals.restore()
