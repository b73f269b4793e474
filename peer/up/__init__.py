"""``rumor up``: a whole swarm on this machine: a Mosquitto, N real peer processes, a summary.

The run directory holds one folder per peer (``peer.toml``, ``peer.log``, ``stats.jsonl``,
``checkpoints/``, and at the end ``model.safetensors``, the peer's final model), the broker's
files, and ``summary.json``. Progress comes from the swarm's
telemetry; the final table from each peer's stats file. Ctrl-C or SIGTERM stops every peer
process (by process group) and then the broker, which runs in its own session so that a Ctrl-C
in the terminal reaches it only through this command; a second signal while stopping kills what
is left at once (:mod:`peer.up.shutdown`). Nothing started here outlives the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import sys
import time
from pathlib import Path

from peer.broker import Broker
from peer.config import PeerConfig, to_toml
from peer.tasks.plugin import metric_key
from peer.up.material import prepare
from peer.up.procs import PeerProcess, kill_all, launch, stop_all
from peer.up.report import attack_summary, peer_rows, render_table, write_summary
from peer.up.settings import UpConfig, add_up_arguments, peer_configs, up_config, validate_swarm
from peer.up.shutdown import Shutdown
from peer.watch import SwarmView, watch_swarm
from protocol.privacy_params import parse_dp

__all__ = ["UpConfig", "add_up_arguments", "run_up"]

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130
BROKER_MAX_PACKET = 1024 * 1024
"""The packet limit of the broker ``rumor up`` starts (peers chunk at 124 KiB by default): a
client cannot make the broker take, or the peers receive, one message larger than this."""
_POLL_S = 0.5


def run_up(args: argparse.Namespace) -> int:
    up = up_config(args)
    # a bad topology, spec or plug-in: exit 2 before anything is launched
    validate_swarm(up)
    up.out.mkdir(parents=True, exist_ok=True)
    shutdown = Shutdown()
    shutdown.install()
    try:
        return _run(up, shutdown)
    finally:
        shutdown.restore()


def _run(up: UpConfig, shutdown: Shutdown) -> int:
    broker = None
    peers: list[PeerProcess] = []
    shutdown.on_escalation(lambda: kill_all(peers))
    start = time.monotonic()
    secure_dir, sections = prepare(up.out, up.peers, up.swarm, up.security)
    try:
        if up.broker is None:
            packet = up.max_packet_size or BROKER_MAX_PACKET
            broker = Broker(max_packet_size=packet, log_dir=up.out / "broker", secure=secure_dir)
            shutdown.on_escalation(broker.kill)
            broker.launch()
            host, port = broker.host, broker.port
        else:
            host, port = up.broker
        if up.byzantine is not None:
            up.byzantine.record(up.out)
            print(f"rumor up: {', '.join(up.byzantine.names)} attack with {up.byzantine.attack}")
        for j, config in enumerate(peer_configs(up, host=host, port=port, sections=sections)):
            if shutdown.requested:
                break
            extra = () if up.byzantine is None else up.byzantine.args_for(j)
            peers.append(_launch(up, config, extra))
        how = {"signed": "signed frames", "secure": "TLS + signed frames"}.get(up.security, "")
        print(
            f"rumor up: {up.peers} peers on {host}:{port}, swarm {up.swarm!r}, out {up.out}"
            + (f", {how}" if how else ", insecure")
        )
        tls = None if secure_dir is None else secure_dir / "watch"
        asyncio.run(_supervise(up, peers, (host, port, tls), shutdown))
    finally:
        shutdown.stopping = True
        if shutdown.requested:
            print("rumor up: interrupted; stopping every peer and the broker", file=sys.stderr)
        stop_all(peers)
        if broker is not None:
            broker.stop()
    return _report(up, peers, host, port, interrupted=shutdown.requested, start=start)


def _launch(up: UpConfig, config: PeerConfig, extra: tuple[str, ...]) -> PeerProcess:
    folder = up.out / config.identity.peer
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "peer.toml"
    path.unlink(missing_ok=True)
    # 0600: with show_secrets it may hold a broker password.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(to_toml(config, show_secrets=True))
    return launch(config.identity.peer, path, folder, extra=extra)


def _report(
    up: UpConfig, peers: list[PeerProcess], host: str, port: int, *, interrupted: bool, start: float
) -> int:
    attackers = frozenset(() if up.byzantine is None else up.byzantine.names)
    rows = peer_rows(peers, attackers=attackers)
    print(render_table(rows))
    write_summary(
        up.out / "summary.json",
        rows,
        {
            "broker": f"{host}:{port}",
            "swarm": up.swarm,
            "wall_s": time.monotonic() - start,
            "interrupted": interrupted,
            "topology": up.topology,
            "rounds": up.rounds,
            "task": up.task if up.data is None else up.data,
            "model": up.model,
            "metric": up.metric,
            "partition": up.partition,
        }
        | attack_summary(rows, None if up.byzantine is None else str(up.byzantine.attack))
        | ({} if up.dp is None else {"privacy": parse_dp(up.dp).to_dict()}),
    )
    if up.task != "consensus" or up.data is not None:
        from peer.export_cli import export_peers  # imports torch: only now

        export_peers([up.out / p.name for p in peers])
    if interrupted:
        return EXIT_INTERRUPTED
    return 0 if all(p.process.returncode == 0 for p in peers) else 1


async def _supervise(
    up: UpConfig,
    peers: list[PeerProcess],
    where: tuple[str, int, Path | None],
    shutdown: Shutdown,
) -> None:
    """Show progress until every peer has exited or a signal asks for a stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wake() -> None:
        loop.call_soon_threadsafe(stop.set)

    shutdown.wake = wake
    if shutdown.requested:
        stop.set()
    # Only the peers launched here count: anyone on the broker can invent others.
    view = SwarmView(prefix="rumor", swarm=up.swarm, peers=frozenset(p.name for p in peers))
    watcher = asyncio.create_task(_watch(where, view))
    shown = -1
    try:
        while any(p.running for p in peers) and not stop.is_set():
            shown = _progress(view, up, shown, peers)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await stop.wait()
    finally:
        shutdown.wake = None
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


async def _watch(where: tuple[str, int, Path | None], view: SwarmView) -> None:
    """Feed the progress view for as long as the supervisor runs; a failure is logged and the
    watch starts over, so progress never stops silently."""
    host, port, tls = where
    while True:
        try:
            await watch_swarm(host, port, view, duration=None, tty=False, quiet=True, tls=tls)
        except Exception as exc:
            log.warning("progress watcher failed (%s); restarting it", exc)
        await asyncio.sleep(_POLL_S)


def _plausible(key: str, value: float) -> bool:
    """A telemetry value worth averaging: finite, and an accuracy within [0, 1]."""
    return math.isfinite(value) and (key != "accuracy" or 0.0 <= value <= 1.0)


def _progress(view: SwarmView, up: UpConfig, shown: int, peers: list[PeerProcess]) -> int:
    rows = view.rows().values()
    rounds = [r for row in rows if type(r := row.get("round")) is int and 0 <= r <= up.rounds]
    if len(rounds) < len(peers) or min(rounds) <= shown:
        return shown
    key = metric_key(up.metric)
    accs = [a for row in rows if isinstance(a := row.get(key), float) and _plausible(key, a)]
    acc = f" mean {key} {sum(accs) / len(accs):.3f}" if accs else ""
    alive = sum(p.running for p in peers)
    print(
        f"round {min(rounds)}/{up.rounds} (fastest {max(rounds)}), {alive} peers running{acc}",
        flush=True,
    )
    return min(rounds)
