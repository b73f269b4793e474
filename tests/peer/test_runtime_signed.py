"""A swarm that signs and requires signatures gossips exactly as an unsigned one does."""

from __future__ import annotations

import asyncio

import torch

from peer.config import PeerConfig
from peer.runtime import PeerRuntime, load_learner
from peer.runtime.daemon import presence_signer
from peer.runtime.neighbours import static_neighbourhood
from peer.security.credentials import Credentials
from peer.transport import MemoryBroker, MemoryTransport, Presence
from protocol.signing import SigningKey, Trust
from protocol.topics import topic
from tests.peer.runtime_helpers import drive, peer_config, run_memory_swarm

PEERS = 3
KEYS = [SigningKey.from_seed(bytes([i + 1] * 32)) for i in range(PEERS)]
TRUST = Trust({f"p{i}": k.public_bytes() for i, k in enumerate(KEYS)})


def _signed_peer(
    broker: MemoryBroker, config: PeerConfig, index: int
) -> tuple[MemoryTransport, PeerRuntime]:
    ident = config.identity
    presence = Presence(
        topic=topic("presence", swarm=ident.swarm, peer=ident.peer),
        sign=presence_signer(config, KEYS[index]),
    )
    transport = MemoryTransport(broker, client_id=ident.peer, presence=presence)
    hood = static_neighbourhood(config.topology, me=ident.peer)
    assert hood is not None
    learner = load_learner(config, index=hood.index, peers=hood.size)
    creds = Credentials(key=KEYS[index], trust=TRUST)
    return transport, PeerRuntime(config, transport, learner, neighbourhood=hood, credentials=creds)


async def test_a_signed_swarm_ends_bit_identical_to_an_unsigned_one() -> None:
    configs = [peer_config(i, PEERS, rounds=5) for i in range(PEERS)]
    plain = await run_memory_swarm(configs)
    broker = MemoryBroker()
    peers = [_signed_peer(broker, c, i) for i, c in enumerate(configs)]
    signed = await asyncio.gather(*(drive(t, r) for t, r in peers))
    for (plain_stats, plain_x), (signed_stats, signed_x) in zip(plain, signed, strict=True):
        assert torch.equal(plain_x, signed_x)
        assert [s.received for s in signed_stats] == [s.received for s in plain_stats]
        assert all(not s.rejected for s in signed_stats)
