"""``rumor peer``: one daemon process, from a validated config to exit status.

Builds the learner (own shard only), the MQTT transport with presence, and the runtime; runs the
rounds, logging one line per round and optionally appending each round's stats as a JSON line to
a file. SIGTERM and SIGINT finish the current round, checkpoint, publish ``offline`` and return 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import TextIO

from peer.config import PeerConfig
from peer.runtime.learning import load_learner
from peer.runtime.neighbours import static_neighbourhood
from peer.runtime.runtime import PeerRuntime
from peer.runtime.stats import log_line, to_json
from peer.transport import MqttTransport, Presence, settings_from_config
from protocol.errors import ConfigError
from protocol.topics import topic

__all__ = ["configure_logging", "run_peer"]

log = logging.getLogger("rumor.peer")


def configure_logging(config: PeerConfig) -> None:
    """Apply ``[logging]``: the level, and a log file next to stderr if one is set."""
    root = logging.getLogger()
    root.setLevel(config.logging.level)
    if config.logging.file is not None:
        try:
            handler = logging.FileHandler(config.logging.file)
        except OSError as exc:
            where = str(config.logging.file)
            raise ConfigError(f"logging.file = {where!r}: {exc.strerror}") from exc
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def _open_for_append(path: Path, what: str) -> TextIO:
    try:
        return path.open("a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: {exc.strerror}") from exc


def _install_signals(runtime: PeerRuntime) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, runtime, sig)


def _on_signal(runtime: PeerRuntime, sig: signal.Signals) -> None:
    log.info("%s received: finishing the current round", sig.name)
    runtime.stop()


async def run_peer(config: PeerConfig, *, stats_file: Path | None = None) -> int:
    """Run the daemon until its rounds are done or a signal stops it; return the exit status."""
    ident = config.identity
    hood = static_neighbourhood(config.topology, me=ident.peer)
    peers = config.learning.peers or (hood.size if hood is not None else 1)
    index = config.learning.partition_index
    if index is None:
        index = hood.index if hood is not None else 0
    learner = await asyncio.to_thread(load_learner, config, index=index, peers=peers)
    presence = Presence(
        topic=topic("presence", prefix=ident.prefix, swarm=ident.swarm, peer=ident.peer)
    )
    transport = MqttTransport(settings_from_config(config), presence=presence)
    stream = None if stats_file is None else _open_for_append(stats_file, "--stats-file")
    if config.storage.checkpoint_dir is not None:  # fail now, not after the first round
        try:
            config.storage.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = str(config.storage.checkpoint_dir)
            raise ConfigError(f"storage.checkpoint_dir = {where!r}: {exc.strerror}") from exc
    try:
        async with transport:
            try:
                async with asyncio.timeout(config.broker.connect_timeout_s):
                    await transport.state.wait_up()
            except TimeoutError:
                log.warning(
                    "broker %s:%d not reachable yet; training goes on, gossip will follow",
                    config.broker.host,
                    config.broker.port,
                )
            async with PeerRuntime(config, transport, learner, neighbourhood=hood) as runtime:
                _install_signals(runtime)
                async for stats in runtime.rounds():
                    log.info("%s %s", ident.peer, log_line(stats))
                    if stream is not None:
                        stream.write(to_json(stats, peer=ident.peer, swarm=ident.swarm) + "\n")
                        stream.flush()
    finally:
        if stream is not None:
            stream.close()
    log.info("%s stopped cleanly", ident.peer)
    return 0
