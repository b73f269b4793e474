"""Helpers shared by the runtime tests: configs and in-memory swarms."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import torch

from peer.config import PeerConfig, config_from_dict
from peer.runtime import LocalLearner, PeerRuntime, RoundStats, load_learner
from peer.runtime.neighbours import static_neighbourhood
from peer.transport import (
    MemoryBroker,
    MemoryTransport,
    MqttTransport,
    Presence,
    Transport,
    settings_from_config,
)
from protocol.topics import topic

__all__ = ["drive", "memory_peer", "mqtt_peer", "peer_config", "run_memory_swarm"]


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
    broker: MemoryBroker, config: PeerConfig, learner: LocalLearner | None = None
) -> tuple[MemoryTransport, PeerRuntime]:
    ident = config.identity
    presence = Presence(topic=topic("presence", swarm=ident.swarm, peer=ident.peer))
    transport = MemoryTransport(broker, client_id=ident.peer, presence=presence)
    hood = static_neighbourhood(config.topology, me=ident.peer)
    assert hood is not None
    if learner is None:
        learner = load_learner(config, index=hood.index, peers=hood.size)
    return transport, PeerRuntime(config, transport, learner, neighbourhood=hood)


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


async def drive(
    transport: Transport,
    runtime: PeerRuntime,
    on_round: Callable[[RoundStats], Awaitable[None]] | None = None,
    *,
    meet: bool = False,
) -> tuple[list[RoundStats], torch.Tensor]:
    """Run one peer to the end, calling ``on_round`` after each round. With ``meet``, round 0
    starts only once every neighbour's presence has come in (else a peer that connects first
    runs its first rounds before the others' presence arrives: within the start-up grace they
    count as alive unheard, and the late presence then forces a keyframe at a round that
    depends on timing)."""
    out: list[RoundStats] = []
    async with transport:
        await transport.state.wait_up()
        async with runtime:
            hood = runtime.hood.neighbours
            async with asyncio.timeout(60 if meet else None):  # fail, never hang
                while meet:
                    if hood <= runtime.liveness.announced():
                        break
                    await asyncio.sleep(0.02)  # polling: presence has no change event
            async for stats in runtime.rounds():
                out.append(stats)
                if on_round is not None:
                    await on_round(stats)
    return out, runtime.x
