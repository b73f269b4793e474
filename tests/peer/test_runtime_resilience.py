"""The runtime on the in-memory transport when things go wrong: membership views over time,
a diverging learner, a broker blip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import torch

from peer.config import config_from_dict
from peer.runtime import PeerRuntime, RoundStats, load_learner
from peer.transport import MemoryBroker, MemoryTransport, Presence
from protocol.topics import topic
from tests.peer.runtime_helpers import drive, memory_peer, peer_config


def _membership_peer(
    broker: MemoryBroker, name: str, rounds: int
) -> tuple[MemoryTransport, PeerRuntime]:
    config = config_from_dict(
        {
            "identity": {"peer": name, "swarm": "m"},
            "topology": {"membership": True, "seed": 0},
            "learning": {"task": "consensus", "peers": 10, "partition_index": int(name[1:])},
            "gossip": {"rounds": rounds, "round_timeout_s": 0.2, "silence_timeout_s": 0.1},
        }
    )
    presence = Presence(topic=topic("presence", swarm="m", peer=name))
    transport = MemoryTransport(broker, client_id=name, presence=presence)
    learner = load_learner(config, index=int(name[1:]), peers=10)
    return transport, PeerRuntime(config, transport, learner, neighbourhood=None)


async def test_membership_views_agree_long_after_the_silence_timeout() -> None:
    broker = MemoryBroker()
    peers = [_membership_peer(broker, f"p{i}", rounds=40) for i in range(10)]
    sizes: dict[int, list[int]] = {}

    def recorder(runtime: PeerRuntime) -> Callable[[RoundStats], Awaitable[None]]:
        async def record(stats: RoundStats) -> None:
            sizes.setdefault(stats.round, []).append(runtime.hood.size)

        return record

    await asyncio.gather(*(drive(t, r, on_round=recorder(r)) for t, r in peers))
    # Forty rounds outlast the 0.1 s silence timeout many times over. A peer hears only its
    # in-neighbours, yet until peers start finishing (and announce offline) every peer must
    # derive the same ten-peer graph.
    assert all(sizes[r] == [10] * 10 for r in range(1, 31)), sizes


async def test_a_diverged_local_step_keeps_the_last_model_and_the_daemon_alive() -> None:
    broker = MemoryBroker()
    peers = [memory_peer(broker, peer_config(i, 3, rounds=3)) for i in range(3)]
    runtime = peers[0][1]
    train = runtime.learner.train

    def diverge(x: torch.Tensor, round: int) -> tuple[torch.Tensor, float]:
        new, loss = train(x, round)
        return (torch.full_like(new, float("inf")), loss) if round == 1 else (new, loss)

    runtime.learner.train = diverge  # type: ignore[method-assign]
    results = await asyncio.gather(*(drive(t, r) for t, r in peers))
    for stats, x in results:
        assert [s.round for s in stats] == [1, 2, 3]
        assert bool(torch.isfinite(x).all())
        assert stats[-1].rejected_total == 0


async def test_after_a_broker_blip_the_next_frame_is_a_keyframe() -> None:
    broker = MemoryBroker()
    configs = [peer_config(i, 3, rounds=6, gossip={"keyframe_interval": 100}) for i in range(3)]
    peers = [memory_peer(broker, c) for c in configs]

    async def blip(stats: object) -> None:
        if getattr(stats, "round", 0) == 2:
            broker.go_down()
            await asyncio.sleep(0.05)
            broker.go_up()

    results = await asyncio.gather(
        drive(*peers[0], on_round=blip), *(drive(t, r) for t, r in peers[1:])
    )
    for _, runtime in peers:
        assert runtime.sender.next_seq > 100, "a keyframe slot was skipped to after the blip"
    for stats, _ in results:
        late = stats[-1]
        assert late.received == 2, "every neighbour is back in sync by the last round"
