"""``rumor secure init|add-peer|revoke``: a swarm's keys, certificates and broker files.

Imports of ``cryptography`` happen in the handlers, so ``rumor --help`` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from peer.cli import Subparsers
from protocol.errors import ConfigError
from protocol.topics import DEFAULT_PREFIX, peer_name

__all__ = ["add_secure_parser", "parse_peers"]

_EXAMPLES = """\
examples:
  rumor secure init swarm/ --swarm lab --peers 4 --broker-host broker.lan
  rumor secure init swarm/ --swarm lab --peers kitchen,garage,attic --broker-port 8883
  rumor secure add-peer swarm/ p4
  rumor secure revoke swarm/ p2
  mosquitto -c swarm/broker/mosquitto.conf
  rumor peer --config swarm/peers/p0/peer.toml

init writes a swarm CA, a broker certificate, a Mosquitto TLS listener that requires client
certificates with an ACL per peer, and per peer a folder with its certificate, keys, trust list
and peer.toml. Keys are 0600 and never overwritten. README.md, section "Secure swarms", explains.
"""


def parse_peers(text: str) -> tuple[list[str], bool]:
    """``--peers``: a count (ids p0, p1, ...) or comma-separated ids; (ids, were they named).

    >>> parse_peers("3"), parse_peers("a,b")
    ((['p0', 'p1', 'p2'], False), (['a', 'b'], True))
    """
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise ConfigError(f"--peers {text}: expected at least 1 peer")
        return [peer_name(j) for j in range(count)], False
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--peers {text!r}: expected a count or comma-separated peer ids")
    return names, True


def add_secure_parser(subparsers: Subparsers) -> None:
    secure = subparsers.add_parser(
        "secure",
        help="generate a swarm's TLS certificates, signing keys, broker config and ACL",
        description="Generate and maintain the material of a secure swarm.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = secure.add_subparsers(dest="secure_action", required=True)
    init = actions.add_parser("init", help="a new swarm's material in DIR")
    init.add_argument("dir", type=Path)
    init.add_argument("--swarm", required=True)
    init.add_argument("--peers", required=True, help="a count (p0, p1, ...) or NAME,NAME,...")
    init.add_argument("--broker-host", default="127.0.0.1", help="what peers connect to")
    init.add_argument("--broker-port", type=int, default=8883)
    init.add_argument("--prefix", default=DEFAULT_PREFIX)
    init.add_argument(
        "--topology",
        help="a topology family over the peers (default ring), or membership (default with names)",
    )
    init.set_defaults(handler=_init)
    for action, doc in (("add-peer", "add a peer"), ("revoke", "revoke a peer")):
        sub = actions.add_parser(action, help=f"{doc} to/from the swarm in DIR")
        sub.add_argument("dir", type=Path)
        sub.add_argument("peer")
        sub.set_defaults(handler=_add if action == "add-peer" else _revoke)


def _init(args: argparse.Namespace) -> int:
    from peer.security.swarm import SwarmPlan, init_swarm

    names, named = parse_peers(args.peers)
    topology = args.topology or ("membership" if named else "ring")
    if named and topology != "membership":
        raise ConfigError(
            f"--topology {topology}: named peers need --topology membership (a family numbers "
            "its nodes: use --peers N for p0 .. pN-1)"
        )
    if not 1 <= args.broker_port <= 65535:
        raise ConfigError(f"--broker-port {args.broker_port}: expected 1 to 65535")
    plan = SwarmPlan(
        swarm=args.swarm,
        prefix=args.prefix,
        broker_host=args.broker_host,
        broker_port=args.broker_port,
        topology=topology,
        peers=tuple(names),
    )
    if topology != "membership":
        from topology import build_graph

        try:
            build_graph(topology, len(names), seed=0)
        except ConfigError as exc:
            raise ConfigError(f"--topology {topology}: {exc}") from exc
    init_swarm(args.dir, plan)
    print(f"rumor secure: swarm {args.swarm!r}, {len(names)} peers, in {args.dir}")
    print(f"  broker:  mosquitto -c {args.dir / 'broker' / 'mosquitto.conf'}")
    print(f"  peers:   rumor peer --config {args.dir / 'peers' / names[0] / 'peer.toml'}  (...)")
    print(f"  keep {args.dir / 'ca.key'} off the devices: it signs new peers")
    return 0


def _add(args: argparse.Namespace) -> int:
    from peer.security.swarm import add_peer

    plan = add_peer(args.dir, args.peer)
    print(f"rumor secure: added {args.peer!r}; its folder is {args.dir / 'peers' / args.peer}")
    if plan.topology != "membership":
        print(
            f"  topology {plan.topology}: the other peers' topology.size is still "
            f"{len(plan.peers) - 1}; set it to {len(plan.peers)} on every peer"
        )
    print("  copy trust.toml to every peer and broker/acl to the broker (then reload it)")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from peer.security.swarm import revoke_peer

    revoke_peer(args.dir, args.peer)
    print(f"rumor secure: revoked {args.peer!r}: out of trust.toml and broker/acl")
    print("  copy trust.toml to every peer and broker/acl to the broker (then reload it)")
    return 0
