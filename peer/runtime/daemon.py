"""``rumor peer``: one daemon process, from a validated config to exit status.

Builds the learner (own shard only), the MQTT transport with presence, and the runtime; runs the
rounds, logging one line per round and optionally appending each round's stats as a JSON line to
a file. SIGTERM and SIGINT finish the current round, checkpoint, publish ``offline`` and return 0;
they are handled from the command's first line (:mod:`peer.stopping`), so a peer stopped while it
loads its data or waits for the broker returns 0 too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import torch

from peer.availability import AvailabilityGate, PresenceAnnouncer, SystemReadings
from peer.config import PeerConfig
from peer.metrics import PeerMetrics, serve_metrics
from peer.runtime.attack import Attacker, poison_labels
from peer.runtime.learning import LocalLearner, load_learner
from peer.runtime.neighbours import Neighbourhood, static_neighbourhood
from peer.runtime.runtime import PeerRuntime
from peer.runtime.stats import log_line, to_json
from peer.security.credentials import Credentials, load_credentials
from peer.stopping import StopSignals, until_stopped
from peer.transport import MqttTransport, settings_from_config
from protocol.attack_names import mixes, resolve_attack
from protocol.envelope import envelope_bound
from protocol.errors import ConfigError
from protocol.presence import encode_presence
from protocol.signing import SigningKey
from protocol.spec import Spec
from protocol.topics import topic

__all__ = ["configure_logging", "data_share", "run_peer", "set_threads"]

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


def data_share(config: PeerConfig, hood: Neighbourhood | None) -> tuple[int, int]:
    """(partition index, partitions) of this peer's data; a graph file's size is known only now."""
    learning = config.learning
    peers = learning.peers or (hood.size if hood is not None else 1)
    index = learning.partition_index
    if index is None:
        index = hood.index if hood is not None else 0
    if not 0 <= index < peers:
        raise ConfigError(
            f"learning.partition_index = {index}: expected 0 to {peers - 1} "
            f"(one of {peers} partitions, the graph file's size)"
        )
    return index, peers


async def run_peer(
    config: PeerConfig,
    *,
    stats_file: Path | None = None,
    signals: StopSignals | None = None,
    attack: Spec | None = None,
) -> int:
    """Run the daemon until its rounds are done or a signal stops it; return the exit status.

    ``signals``: the handlers the command installed on its first line (installed here if None);
    ``attack``: make this peer attack its swarm (:mod:`peer.runtime.attack`).
    """
    stop = (signals or StopSignals.install()).event()
    ident = config.identity
    hood = static_neighbourhood(config.topology, me=ident.peer)
    index, peers = data_share(config, hood)
    set_threads(config)
    credentials = load_credentials(config.security)  # a bad key file fails before the data load
    stream = None if stats_file is None else _open_for_append(stats_file, "--stats-file")
    try:
        _make_checkpoint_dir(config)
        # A stop during the load returns at once; the process exits when the load's thread is
        # done (torch's threads must not be torn down under it).
        load = asyncio.to_thread(load_learner, config, index=index, peers=peers)
        learner = await until_stopped(stop, load)
        if learner is not None:
            attacker = None
            if attack is not None:
                learner, attacker = _compromise(learner, attack, peers=peers)
            await _gossip(config, learner, hood, stop, stream, credentials, attacker)
    finally:
        if stream is not None:
            stream.close()
    log.info("%s stopped cleanly", ident.peer)
    return 0


def set_threads(config: PeerConfig) -> None:
    """Apply ``learning.threads`` to torch (0: leave torch's default) and log what torch uses:
    peers sharing a machine each need their share of the cores, or every step slows down."""
    if config.learning.threads > 0:
        torch.set_num_threads(config.learning.threads)
    log.info("%s: torch intra-op threads %d", config.identity.peer, torch.get_num_threads())


def _compromise(
    learner: LocalLearner, attack: Spec, *, peers: int
) -> tuple[LocalLearner, Attacker | None]:
    """The learner and attacker of a peer running ``attack`` (one attacker among ``peers``
    unless the spec says more, e.g. ALIE's z)."""
    if not mixes(attack):
        resolved = resolve_attack(attack, peers=peers, attackers=1)
        return learner, Attacker(attack=resolved, seed=learner.seed, index=learner.index)
    return poison_labels(learner), None


def presence_signer(config: PeerConfig, key: SigningKey) -> Callable[[bool, int], bytes]:
    """Signs this peer's presence payloads (:func:`protocol.presence.encode_presence`)."""
    ident = config.identity

    def sign(online: bool, epoch: int) -> bytes:
        return encode_presence(
            swarm=ident.swarm, sender=ident.peer, online=online, epoch=epoch, key=key
        )

    return sign


def _make_checkpoint_dir(config: PeerConfig) -> None:
    if config.storage.checkpoint_dir is not None:  # fail now, not after the first round
        try:
            config.storage.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = str(config.storage.checkpoint_dir)
            raise ConfigError(f"storage.checkpoint_dir = {where!r}: {exc.strerror}") from exc


async def _gossip(
    config: PeerConfig,
    learner: LocalLearner,
    hood: Neighbourhood | None,
    stop: asyncio.Event,
    stream: TextIO | None,
    credentials: Credentials,
    attacker: Attacker | None,
) -> None:
    """Connect, run the rounds, and say ``offline`` on the way out (the transport's exit)."""
    ident = config.identity
    announcer = PresenceAnnouncer(
        topic=topic("presence", prefix=ident.prefix, swarm=ident.swarm, peer=ident.peer),
        swarm=ident.swarm,
        peer=ident.peer,
        key=credentials.key,
    )
    gate = availability_gate(config, announcer)
    log.info(
        "%s: data loaded; connecting to %s:%d", ident.peer, config.broker.host, config.broker.port
    )
    settings = settings_from_config(config)
    # Nothing larger than this model's widest frame is worth reassembling or queueing.
    limit = min(config.limits.max_message_bytes, envelope_bound(learner.num_params))
    settings = dataclasses.replace(settings, max_message_bytes=limit)
    async with MqttTransport(settings, presence=announcer.presence()) as transport:
        wait = asyncio.wait_for(transport.state.wait_up(), config.broker.connect_timeout_s)
        try:
            await until_stopped(stop, wait)
        except TimeoutError:
            log.warning(
                "broker %s:%d not reachable yet; training goes on, gossip will follow",
                config.broker.host,
                config.broker.port,
            )
        if stop.is_set():
            return
        metrics = peer_metrics(config, transport, gate)
        with serve_metrics(config.metrics, metrics):
            await _rounds(
                config, transport, learner, hood, stop, stream, credentials, gate, metrics, attacker
            )


async def _rounds(
    config: PeerConfig,
    transport: MqttTransport,
    learner: LocalLearner,
    hood: Neighbourhood | None,
    stop: asyncio.Event,
    stream: TextIO | None,
    credentials: Credentials,
    gate: AvailabilityGate | None,
    metrics: PeerMetrics,
    attacker: Attacker | None,
) -> None:
    ident = config.identity
    async with PeerRuntime(
        config,
        transport,
        learner,
        neighbourhood=hood,
        stop=stop,
        credentials=credentials,
        gate=gate,
        attacker=attacker,
    ) as runtime:
        async for stats in runtime.rounds():
            metrics.update(stats)
            log.info("%s %s", ident.peer, log_line(stats))
            if stream is not None:
                stream.write(to_json(stats, peer=ident.peer, swarm=ident.swarm) + "\n")
                stream.flush()


def availability_gate(config: PeerConfig, announcer: PresenceAnnouncer) -> AvailabilityGate | None:
    """The ``[availability]`` gate (None when no condition is set); decides the first presence."""
    if not config.availability.active:
        return None
    gate = AvailabilityGate(config.availability, SystemReadings(), announcer=announcer)
    if gate.start_paused():
        log.info("%s starts paused: %s", config.identity.peer, gate.reason())
    return gate


def peer_metrics(
    config: PeerConfig, transport: MqttTransport, gate: AvailabilityGate | None
) -> PeerMetrics:
    """The collector behind ``[metrics]`` (kept up to date whether served or not)."""
    ident = config.identity
    return PeerMetrics(
        peer=ident.peer,
        swarm=ident.swarm,
        transport=lambda: transport.stats,
        paused=None if gate is None else lambda: (gate.paused, gate.pauses),
    )
