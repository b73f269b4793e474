"""``rumor init FLEET.toml --out DIR [--secure]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from peer.cli import Subparsers
from protocol.errors import ConfigError

__all__ = ["add_init_parser"]

_EXAMPLES = """\
examples:
  rumor init fleet.toml --out fleet/
  rumor init fleet.toml --out fleet/ --secure     # CA, TLS certificates, signing keys, ACL

Writes DIR/peers/NAME/ (peer.toml, graph, plug-in files; with --secure the device's certificate,
keys and trust list) for every device, and DIR/fleet.md: what each device must hold. docs/deploy.md
describes the description's format and how to install the folders as a systemd service.
"""


def add_init_parser(subparsers: Subparsers) -> None:
    init = subparsers.add_parser(
        "init",
        help="write a fleet's per-device peer configs from one description",
        description="Write one peer.toml per device, and what each device must hold.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("fleet", type=Path, help="the fleet description (TOML)")
    init.add_argument("--out", type=Path, required=True, help="the directory to write")
    init.add_argument(
        "--secure", action="store_true", help="also make the CA and per-device credentials"
    )
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from peer.fleet import check_out, init_fleet, load_fleet

    check_out(args.out)
    plan = load_fleet(args.fleet)
    try:
        result = init_fleet(plan, args.out, secure=args.secure)
    except ConfigError as exc:
        raise ConfigError(f"{args.fleet.name}: {exc}") from exc
    names = ", ".join(plan.names)
    print(f"rumor init: fleet {plan.swarm!r}, {len(plan.devices)} devices ({names}) in {args.out}")
    print(f"  what each device must hold: {result.summary}")
    config = args.out / "peers" / plan.names[0] / "peer.toml"
    print(f"  check one: rumor peer --config {config} --print-config")
    return 0
