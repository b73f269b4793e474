"""Helpers shared by the runtime tests: configs and in-memory swarms."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import torch

from peer.config import PeerConfig, config_from_dict
from peer.runtime import LocalLearner, PeerRuntime, RoundStats, load_learner
from peer.runtime.attack import Attacker
from peer.runtime.daemon import presence_signer
from peer.runtime.neighbours import static_neighbourhood
from peer.security.credentials import Credentials
from peer.transport import (
    MemoryBroker,
    MemoryTransport,
    MqttTransport,
    Presence,
    Transport,
    settings_from_config,
)
from protocol.topics import topic

__all__ = [
    "LEARNING",
    "drive",
    "memory_peer",
    "met",
    "mqtt_peer",
    "peer_config",
    "run_memory_swarm",
]

LEARNING: dict[str, object] = {
    "task": "fmnist",
    "model": "mlp:hidden=16",
    "partition": "dirichlet:alpha=0.5",
    "local_steps": 2,
    "batch_size": 8,
    "lr": 0.05,
    "seed": 0,
}
"""A small Fashion-MNIST learner the daemon and simulator parity tests share."""


def peer_config(
    index: int,
    peers: int,
    *,
    family: str = "ring",
    rounds: int = 4,
    swarm: str = "t",
    learning: Mapping[str, object] | None = None,
    gossip: Mapping[str, object] | None = None,
    checkpoint_dir: Path | None = None,
    broker: Mapping[str, object] | None = None,
    limits: Mapping[str, object] | None = None,
) -> PeerConfig:
    data: dict[str, object] = {
        "identity": {"peer": f"p{index}", "swarm": swarm},
        "topology": {"family": family, "size": peers, "node": index, "seed": 0},
        "learning": {"task": "consensus", **(learning or {})},
        "gossip": {"rounds": rounds, "round_timeout_s": 5.0, **(gossip or {})},
        "broker": dict(broker or {}),
        "limits": dict(limits or {}),
    }
    if checkpoint_dir is not None:
        data["storage"] = {"checkpoint_dir": str(checkpoint_dir), "checkpoint_every": 2}
    return config_from_dict(data)


def memory_peer(
    broker: MemoryBroker,
    config: PeerConfig,
    learner: LocalLearner | None = None,
    *,
    credentials: Credentials | None = None,
    attacker: Attacker | None = None,
) -> tuple[MemoryTransport, PeerRuntime]:
    """A peer on ``broker``; with ``credentials`` its frames and presence are signed."""
    ident = config.identity
    key = None if credentials is None else credentials.key
    sign = None if key is None else presence_signer(config, key)
    presence = Presence(topic=topic("presence", swarm=ident.swarm, peer=ident.peer), sign=sign)
    transport = MemoryTransport(broker, client_id=ident.peer, presence=presence)
    hood = static_neighbourhood(config.topology, me=ident.peer)
    assert hood is not None
    if learner is None:
        learner = load_learner(config, index=hood.index, peers=hood.size)
    runtime = PeerRuntime(
        config,
        transport,
        learner,
        neighbourhood=hood,
        credentials=credentials,
        attacker=attacker,
    )
    return transport, runtime


async def _run(
    transport: MemoryTransport, runtime: PeerRuntime
) -> tuple[list[RoundStats], torch.Tensor]:
    out = []
    async with transport:
        await transport.state.wait_up()
        async with runtime:
            out = [s async for s in runtime.rounds()]
    return out, runtime.x


async def run_memory_swarm(
    configs: list[PeerConfig],
) -> list[tuple[list[RoundStats], torch.Tensor]]:
    broker = MemoryBroker()
    peers = [memory_peer(broker, c) for c in configs]
    return list(await asyncio.gather(*(_run(t, r) for t, r in peers)))


def mqtt_peer(config: PeerConfig) -> tuple[MqttTransport, PeerRuntime]:
    """A runtime over a real broker (the one in ``config.broker``), for in-process tests."""
    ident = config.identity
    presence = Presence(topic=topic("presence", swarm=ident.swarm, peer=ident.peer))
    transport = MqttTransport(settings_from_config(config), presence=presence)
    hood = static_neighbourhood(config.topology, me=ident.peer)
    assert hood is not None
    learner = load_learner(config, index=hood.index, peers=hood.size)
    return transport, PeerRuntime(config, transport, learner, neighbourhood=hood)


def met(runtime: PeerRuntime) -> bool:
    """Whether ``runtime`` has heard every neighbour's presence. Being alive is not enough:
    during ``startup_grace_s`` a neighbour never heard from counts as alive. A presence that
    arrives after round 0 is encoded makes round 1 a keyframe (the newcomer holds none of our
    frames), so two runs of one swarm compare equal only if every presence came before round 0.
    """
    return runtime.hood.neighbours <= runtime.liveness.announced()


async def drive(
    transport: Transport,
    runtime: PeerRuntime,
    on_round: Callable[[RoundStats], Awaitable[None]] | None = None,
    *,
    meet: bool = False,
) -> tuple[list[RoundStats], torch.Tensor]:
    """Run one peer to the end, calling ``on_round`` after each round. With ``meet``, round 0
    starts only once every neighbour's presence has arrived (see :func:`met`)."""
    out: list[RoundStats] = []
    async with transport:
        await transport.state.wait_up()
        async with runtime:
            async with asyncio.timeout(60 if meet else None):  # fail, never hang
                while meet:
                    runtime.inbound.changed.clear()  # set on every presence change
                    if met(runtime):
                        break
                    await runtime.inbound.changed.wait()
            async for stats in runtime.rounds():
                out.append(stats)
                if on_round is not None:
                    await on_round(stats)
    return out, runtime.x
