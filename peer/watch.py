"""``rumor watch``: a live table of a swarm, from its telemetry and presence topics.

Works against any broker: it only subscribes. On a terminal the table is redrawn in place (plain
ANSI); otherwise one line is printed per update, which suits logs and tests. ``--once`` prints a
single table after ``--duration`` seconds (default 2) of listening.

>>> view = SwarmView(prefix="rumor", swarm="lab")
>>> view.update("rumor/lab/telemetry/p1", b'{"round": 3, "accuracy": 0.5, "rejected_total": 0}')
'p1'
>>> view.update("rumor/lab/presence/p1", b"offline")
'p1'
>>> view.rows()["p1"]["state"], view.rows()["p1"]["round"]
('offline', 3)
>>> view.update("rumor/lab/presence/p2", b"paused"), view.rows()["p2"]["state"]
('p2', 'paused')
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from peer.tasks.plugin import metric_key
from peer.transport import MqttSettings, MqttTransport
from protocol.errors import ConfigError, ProtocolError, RumorError
from protocol.topics import DEFAULT_PREFIX, check_id, parse_topic, subscription

__all__ = [
    "BrokerUnreachable",
    "SwarmView",
    "add_watch_arguments",
    "parse_address",
    "run_watch",
    "watch_swarm",
]


_MAX_TELEMETRY = 64 * 1024
MAX_ROWS = 1024
"""Peers shown at most: ids are anyone's to invent, so a flood of them must not grow the table."""
_MAX_FIELDS = 64
_MAX_KEY = 32
_MAX_TEXT = 64
_COLUMNS = (  # telemetry key, table heading, cell format
    ("peer", "peer", "{:<10}"),
    ("state", "state", "{:<8}"),
    ("round", "round", "{:>6}"),
    ("train_loss", "train loss", "{:>10}"),
    ("metric", "metric", "{:>8}"),
    ("alive", "alive", "{:>5}"),
    ("bytes_out", "MB out", "{:>9}"),
    ("bytes_in", "MB in", "{:>9}"),
    ("rejected_total", "rejected", "{:>8}"),
    ("dp_epsilon", "epsilon", "{:>8}"),  # differential privacy spent ("-": off)
)
_MEGABYTES = frozenset({"bytes_out", "bytes_in"})


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ConfigError naming the text otherwise.

    >>> parse_address("127.0.0.1:1883")
    ('127.0.0.1', 1883)
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--broker {text!r}: expected HOST:PORT with a port from 1 to 65535")
    return host, int(port)


class SwarmView:
    """The latest telemetry and presence of every peer seen; ignores anything malformed."""

    def __init__(self, *, prefix: str, swarm: str, peers: frozenset[str] | None = None) -> None:
        """``peers``: the only ids to show (None: any, up to :data:`MAX_ROWS`)."""
        self.prefix, self.swarm, self.peers = prefix, swarm, peers
        self._rows: dict[str, dict[str, object]] = {}
        self.ignored = 0
        """Messages ignored: malformed, for another swarm, or from a peer beyond the bound."""

    def rows(self) -> dict[str, dict[str, object]]:
        return {peer: dict(self._rows[peer]) for peer in sorted(self._rows, key=_node_order)}

    def update(self, topic: str, payload: bytes) -> str | None:
        """Fold one message in; return the peer it concerned, or None if it was ignored."""
        peer = self._update(topic, payload)
        if peer is None:
            self.ignored += 1
        return peer

    def _update(self, topic: str, payload: bytes) -> str | None:
        try:
            kind, swarm, peer = parse_topic(topic, prefix=self.prefix)
        except ProtocolError:
            return None
        if swarm != self.swarm or kind not in ("presence", "telemetry"):
            return None
        if peer not in self._rows and not self._room_for(peer):
            return None
        if kind == "presence":
            from protocol.presence import decode_presence  # torch, via the envelope fields

            try:
                state = decode_presence(payload, swarm=swarm, peer=peer, trust=None)
            except ProtocolError:
                return None
            self._row(peer)["state"] = (
                ("paused" if state.paused else "online") if state.online else "offline"
            )
            return peer
        data = _telemetry(payload)
        if data is None:
            return None
        row = self._row(peer)
        row.update(data)
        row["seen"] = time.monotonic()
        if row["state"] == "?":
            row["state"] = "online"
        return peer

    def _room_for(self, peer: str) -> bool:
        if self.peers is not None:
            return peer in self.peers
        return len(self._rows) < MAX_ROWS

    def _row(self, peer: str) -> dict[str, object]:
        return self._rows.setdefault(peer, {"peer": peer, "state": "?"})

    def table(self) -> str:
        header = " ".join(fmt.format(title) for _, title, fmt in _COLUMNS)
        lines = [header]
        for row in self.rows().values():
            cells = (fmt.format(_table_cell(key, _value(row, key))) for key, _, fmt in _COLUMNS)
            lines.append(" ".join(cells))
        return "\n".join(lines)

    def line(self, peer: str) -> str:
        row = self._rows.get(peer, {})
        return " ".join(f"{key}={_cell(_value(row, key))}" for key, _, _ in _COLUMNS)


def _value(row: Mapping[str, object], key: str) -> object:
    """A row's cell; ``metric`` is the value of the peer's metric (accuracy by default)."""
    if key != "metric":
        return row.get(key)
    return row.get(metric_key(str(row.get("metric", "accuracy"))))


def _telemetry(payload: bytes) -> dict[str, object] | None:
    """The flat scalar fields of a telemetry message, bounded; None if it is not a JSON object."""
    if len(payload) > _MAX_TELEMETRY:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None  # deep nesting raises RecursionError, not ValueError
    if not isinstance(data, dict):
        return None
    out: dict[str, object] = {}
    for key, value in list(data.items())[:_MAX_FIELDS]:
        if not isinstance(key, str) or len(key) > _MAX_KEY or key in ("peer", "state", "seen"):
            continue
        if isinstance(value, str):
            out[key] = value[:_MAX_TEXT]
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            continue  # no real counter is this large; as a float it would overflow the table
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
    return out


class BrokerUnreachable(RumorError):
    """The first connection to the broker did not succeed in time."""


def _node_order(peer: str) -> tuple[str, int, str]:
    """``p2`` before ``p10``: names sorted by their stem, then their trailing number."""
    stem = peer.rstrip("0123456789")
    digits = peer[len(stem) :]
    return stem, int(digits) if digits else -1, peer


def _table_cell(key: str, value: object) -> str:
    if key in _MEGABYTES and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value / 1e6:.1f}"
    if key == "dp_epsilon" and isinstance(value, float):
        return f"{value:.4g}"
    return _cell(value)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, metavar="HOST:PORT", help="the swarm's broker")
    parser.add_argument("--swarm", required=True, help="the swarm name")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix (default: rumor)")
    parser.add_argument("--once", action="store_true", help="print one table and exit")
    parser.add_argument(
        "--tls",
        type=Path,
        metavar="DIR",
        help="connect with TLS using DIR/ca.crt, client.crt, client.key (rumor secure's watch/)",
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        help="give up (exit 1) if the broker is not reachable by then, s (default: %(default)s)",
    )


WATCH_QUEUE = 4 * MAX_ROWS
"""Messages a watcher holds before it drops: a peer hears only its neighbours, a watcher every
peer's telemetry and presence, so it holds two rounds of both from the most peers it shows. With
a peer's 256, the watcher of `rumor up` dropped telemetry (and aiomqtt warned) while 8 fast peers
kept the 2 cores of a small machine busy."""


def watch_settings(host: str, port: int, tls: Path | None) -> MqttSettings:
    """The watcher's MQTT settings: a fresh client id, TLS from a ``watch/`` folder if given."""
    return MqttSettings(
        client_id=f"rumor-watch-{os.getpid()}-{time.monotonic_ns()}",
        host=host,
        port=port,
        tls_ca=None if tls is None else tls / "ca.crt",
        tls_cert=None if tls is None else tls / "client.crt",
        tls_key=None if tls is None else tls / "client.key",
        max_queued=WATCH_QUEUE,
    )


async def watch_swarm(
    host: str,
    port: int,
    view: SwarmView,
    *,
    duration: float | None,
    tty: bool,
    quiet: bool = False,
    connect_timeout_s: float | None = None,
    tls: Path | None = None,
) -> None:
    """Subscribe and fold messages into ``view`` until ``duration`` (None: forever).

    With ``connect_timeout_s``, raise :class:`BrokerUnreachable` if the first connection has
    not come up by then (a watch of an unreachable broker must not look like an empty swarm).
    ``tls``: a folder with ``ca.crt``, ``client.crt`` and ``client.key`` (a ``rumor secure``
    swarm's ``watch/``) to connect with TLS.
    """
    settings = watch_settings(host, port, tls)
    filters = [
        subscription(k, prefix=view.prefix, swarm=view.swarm) for k in ("presence", "telemetry")
    ]
    async with MqttTransport(settings) as link:
        await link.subscribe(filters)
        if connect_timeout_s is not None:
            try:
                async with asyncio.timeout(connect_timeout_s):
                    await link.state.wait_up()
            except TimeoutError:
                raise BrokerUnreachable(
                    f"broker {host}:{port} not reachable within {connect_timeout_s:g} s"
                ) from None
        async with asyncio.timeout(duration):
            async for message in link.messages():
                peer = view.update(message.topic, message.payload)
                if peer is None or quiet:
                    continue
                if tty:
                    sys.stdout.write("\x1b[H\x1b[2J" + view.table() + "\n")
                else:
                    sys.stdout.write(view.line(peer) + "\n")
                sys.stdout.flush()


def run_watch(args: argparse.Namespace) -> int:
    host, port = parse_address(args.broker)
    check_id(args.swarm, what="--swarm")
    check_id(args.prefix, what="--prefix")
    view = SwarmView(prefix=args.prefix, swarm=args.swarm)
    duration = args.duration if args.duration is not None else (2.0 if args.once else None)
    if duration is not None and not duration > 0:
        raise ConfigError(f"--duration {duration}: expected a number of seconds > 0")
    if args.tls is not None:
        for name in ("ca.crt", "client.crt", "client.key"):
            if not (args.tls / name).is_file():
                raise ConfigError(f"--tls {str(args.tls)!r}: no {name} in it")
    connect = args.connect_timeout
    if not connect > 0:
        raise ConfigError(f"--connect-timeout {connect}: expected a number of seconds > 0")
    watch = watch_swarm(
        host,
        port,
        view,
        duration=duration,
        tty=sys.stdout.isatty(),
        quiet=args.once,
        connect_timeout_s=connect,
        tls=args.tls,
    )
    with contextlib.suppress(TimeoutError):
        asyncio.run(watch)
    if args.once:
        sys.stdout.write(view.table() + "\n")
    return 0
