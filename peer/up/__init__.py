"""``rumor up``: a whole swarm on this machine: a Mosquitto, N real peer processes, a summary.

The run directory holds one folder per peer (``peer.toml``, ``peer.log``, ``stats.jsonl``,
``checkpoints/``, and at the end ``model.safetensors``, the peer's final model), the broker's
files, and ``summary.json``. Progress comes from the swarm's
telemetry; the final table from each peer's stats file. Ctrl-C or SIGTERM stops every peer
process (by process group) and the broker; nothing started here outlives the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time

from peer.broker import Broker
from peer.config import to_toml
from peer.tasks.plugin import metric_key
from peer.up.procs import PeerProcess, launch, stop_all
from peer.up.report import peer_rows, render_table, write_summary
from peer.up.settings import UpConfig, add_up_arguments, check_plugins, peer_configs, up_config
from peer.watch import SwarmView, watch_swarm

__all__ = ["UpConfig", "add_up_arguments", "run_up"]

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130
_POLL_S = 0.5


def run_up(args: argparse.Namespace) -> int:
    up = up_config(args)
    # Every config, and any plug-in, is checked before a broker or a peer starts.
    check_plugins(peer_configs(up, host="127.0.0.1", port=1883)[0], peers=up.peers)
    up.out.mkdir(parents=True, exist_ok=True)
    broker = None
    if up.broker is None:
        broker = Broker(max_packet_size=up.max_packet_size, log_dir=up.out / "broker")
        broker.launch()
        host, port = broker.host, broker.port
    else:
        host, port = up.broker
    peers: list[PeerProcess] = []
    start = time.monotonic()
    try:
        configs = peer_configs(up, host=host, port=port)
        for config in configs:
            folder = up.out / config.identity.peer
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "peer.toml"
            path.write_text(to_toml(config, show_secrets=True))
            peers.append(launch(config.identity.peer, path, folder))
        print(f"rumor up: {up.peers} peers on {host}:{port}, swarm {up.swarm!r}, out {up.out}")
        interrupted = asyncio.run(_supervise(up, peers, host, port))
    finally:
        stop_all(peers)
        if broker is not None:
            broker.stop()
    rows = peer_rows(peers)
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
        },
    )
    if up.task != "consensus" or up.data is not None:
        from peer.export_cli import export_peers  # imports torch: only now

        export_peers([up.out / p.name for p in peers])
    if interrupted:
        return EXIT_INTERRUPTED
    return 0 if all(p.process.returncode == 0 for p in peers) else 1


async def _supervise(up: UpConfig, peers: list[PeerProcess], host: str, port: int) -> bool:
    """Show progress until every peer has exited; True if a signal cut the run short."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    view = SwarmView(prefix="rumor", swarm=up.swarm)
    watcher = asyncio.create_task(
        watch_swarm(host, port, view, duration=None, tty=False, quiet=True)
    )
    shown = -1
    try:
        while any(p.running for p in peers) and not stop.is_set():
            shown = _progress(view, up, shown, peers)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await stop.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
    if stop.is_set():
        print("rumor up: interrupted; stopping every peer and the broker", file=sys.stderr)
    return stop.is_set()


def _progress(view: SwarmView, up: UpConfig, shown: int, peers: list[PeerProcess]) -> int:
    rows = view.rows().values()
    rounds = [r for row in rows if isinstance(r := row.get("round"), int)]
    if len(rounds) < len(peers) or min(rounds) <= shown:
        return shown
    key = metric_key(up.metric)
    accs = [a for row in rows if isinstance(a := row.get(key), float)]
    acc = f" mean {key} {sum(accs) / len(accs):.3f}" if accs else ""
    alive = sum(p.running for p in peers)
    print(
        f"round {min(rounds)}/{up.rounds} (fastest {max(rounds)}), {alive} peers running{acc}",
        flush=True,
    )
    return min(rounds)
