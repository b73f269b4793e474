"""``rumor up``: a whole swarm on this machine: a Mosquitto, N real peer processes, a summary.

The run directory holds one folder per peer (``peer.toml``, ``peer.log``, ``stats.jsonl``,
``checkpoints/``, and at the end ``model.safetensors``, the peer's final model), the broker's
files, and ``summary.json``. Progress comes from the swarm's
telemetry; the final table from each peer's stats file. Ctrl-C or SIGTERM stops every peer
process (by process group) and then the broker, which runs in its own session so that a Ctrl-C
in the terminal reaches it only through this command; a second signal while stopping kills what
is left at once (:mod:`peer.up.shutdown`). Nothing started here outlives the command.

Failure flags (:mod:`peer.up.failures`) are carried out by the peers' fault plans and by
:class:`~peer.up.faultrun.FaultDriver`, which records them in ``failures.json``; after the run,
the peers' model snapshots become ``rounds.jsonl`` (:mod:`peer.up.rounds`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

from peer.broker import Broker
from peer.config import PeerConfig, to_toml
from peer.tasks.plugin import metric_key
from peer.up.faultlaunch import FaultLaunch
from peer.up.faultrun import FaultDriver
from peer.up.material import prepare
from peer.up.procs import PeerProcess, kill_all, launch, stop_all
from peer.up.report import attack_summary, peer_rows, render_table, write_summary
from peer.up.settings import (
    BROKER_MAX_PACKET,
    UpConfig,
    add_up_arguments,
    peer_configs,
    up_config,
    validate_swarm,
)
from peer.up.shutdown import Shutdown
from peer.watch import SwarmView, watch_swarm
from protocol.privacy_params import parse_dp
from protocol.topics import peer_name

__all__ = ["UpConfig", "add_up_arguments", "run_up"]

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130
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
    driver: FaultDriver | None = None
    faults = FaultLaunch(up.failures, out=up.out, peers=up.peers, rounds=up.rounds, seed=up.seed)
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
            config = faults.configure(config, j, local_steps=up.local_steps)
            peers.append(_launch(up, config, (*_attack_args(up, j), *faults.args(j))))
        how = {"signed": "signed frames", "secure": "TLS + signed frames"}.get(up.security, "")
        print(
            f"rumor up: {up.peers} peers on {host}:{port}, swarm {up.swarm!r}, out {up.out}"
            + (f", {how}" if how else ", insecure")
        )
        if up.failures.any:
            driver = faults.driver(
                peers, lambda j, r: _relaunch(up, j, faults.args(j, resume_at=r)), broker
            )
        tls = None if secure_dir is None else secure_dir / "watch"
        asyncio.run(_supervise(up, peers, (host, port, tls), shutdown, driver))
    finally:
        shutdown.stopping = True
        if shutdown.requested:
            print("rumor up: interrupted; stopping every peer and the broker", file=sys.stderr)
        if driver is not None:
            driver.finish()
        stop_all(peers)
        if broker is not None:
            broker.stop()
    return _report(
        up, peers, host, port, interrupted=shutdown.requested, start=start, driver=driver
    )


def _launch(up: UpConfig, config: PeerConfig, extra: tuple[str, ...]) -> PeerProcess:
    folder = up.out / config.identity.peer
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "peer.toml"
    path.unlink(missing_ok=True)
    # 0600: with show_secrets it may hold a broker password.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(to_toml(config, show_secrets=True))
    shutil.rmtree(folder / "snapshots", ignore_errors=True)
    extra = (*extra, *_snapshot_args(up, folder))
    return launch(config.identity.peer, path, folder, extra=extra)


def _attack_args(up: UpConfig, index: int) -> tuple[str, ...]:
    return () if up.byzantine is None else tuple(up.byzantine.args_for(index))


def _snapshot_args(up: UpConfig, folder: Path) -> list[str]:
    if up.task == "consensus" and up.data is None:
        return []
    every = ["--snapshot-every", str(up.eval_every)]
    return ["--snapshot-dir", str((folder / "snapshots").resolve()), *every]


def _relaunch(up: UpConfig, index: int, extra: list[str]) -> PeerProcess:
    """Restart a crashed peer from its checkpoint (its stats file goes on)."""
    name = peer_name(index)
    folder = up.out / name
    args = (*_attack_args(up, index), *extra, *_snapshot_args(up, folder))
    return launch(name, folder / "peer.toml", folder, extra=args, fresh=False)


def _report(
    up: UpConfig,
    peers: list[PeerProcess],
    host: str,
    port: int,
    *,
    interrupted: bool,
    start: float,
    driver: FaultDriver | None = None,
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
        if not interrupted:
            _write_rounds(up, peers, driver)
    if interrupted:
        return EXIT_INTERRUPTED
    planned = set() if driver is None else driver.down_for_good
    return 0 if all(p.process.returncode == 0 or p.name in planned for p in peers) else 1


def _write_rounds(up: UpConfig, peers: list[PeerProcess], driver: FaultDriver | None) -> None:
    """rounds.jsonl with ``rumor sim``'s fields (:mod:`peer.up.rounds`; imports torch)."""
    from peer.config import load_config
    from peer.up.rounds import write_rounds

    config = load_config(peers[0].config)
    periods = [] if driver is None else driver.periods
    folders = [up.out / p.name for p in peers]
    write_rounds(up.out, folders, config, periods=periods, every=up.eval_every)


async def _supervise(
    up: UpConfig,
    peers: list[PeerProcess],
    where: tuple[str, int, Path | None],
    shutdown: Shutdown,
    driver: FaultDriver | None = None,
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
    driving = None if driver is None else asyncio.create_task(driver.run())
    shown = -1
    try:
        while _busy(peers, driver) and not stop.is_set():
            shown = _progress(view, up, shown, peers)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await stop.wait()
    finally:
        shutdown.wake = None
        for task in (watcher, driving):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _busy(peers: list[PeerProcess], driver: FaultDriver | None) -> bool:
    """A peer is running, or a crashed one is still to come back."""
    return any(p.running for p in peers) or (driver is not None and driver.pending)


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
