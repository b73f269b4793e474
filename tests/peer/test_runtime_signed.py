"""A swarm that signs and requires signatures gossips exactly as an unsigned one does."""

from __future__ import annotations

import asyncio

import torch

from peer.security.credentials import Credentials
from peer.transport import MemoryBroker
from protocol.signing import SigningKey, Trust
from tests.peer.runtime_helpers import drive, memory_peer, peer_config, run_memory_swarm

PEERS = 3
KEYS = [SigningKey.from_seed(bytes([i + 1] * 32)) for i in range(PEERS)]
TRUST = Trust({f"p{i}": k.public_bytes() for i, k in enumerate(KEYS)})


async def test_a_signed_swarm_ends_bit_identical_to_an_unsigned_one() -> None:
    configs = [peer_config(i, PEERS, rounds=5) for i in range(PEERS)]
    plain = await run_memory_swarm(configs)
    broker = MemoryBroker()
    peers = [
        memory_peer(broker, c, credentials=Credentials(key=KEYS[i], trust=TRUST))
        for i, c in enumerate(configs)
    ]
    signed = await asyncio.gather(*(drive(t, r) for t, r in peers))
    for (plain_stats, plain_x), (signed_stats, signed_x) in zip(plain, signed, strict=True):
        assert torch.equal(plain_x, signed_x)
        assert [s.received for s in signed_stats] == [s.received for s in plain_stats]
        assert all(not s.rejected for s in signed_stats)
