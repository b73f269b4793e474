"""Limits a peer derives from its own model, so that a flood cannot buy memory with size."""

from __future__ import annotations

from peer.transport import MemoryBroker
from protocol.envelope import envelope_bound
from tests.peer.runtime_helpers import memory_peer, peer_config


def test_a_peer_accepts_no_message_larger_than_its_model_could_need() -> None:
    config = peer_config(0, 2, rounds=1)
    assert config.limits.max_message_bytes == 64 * 1024 * 1024
    _, runtime = memory_peer(MemoryBroker(), config)
    n = runtime.learner.num_params
    assert runtime.inbound.expected.max_bytes == envelope_bound(n)
    assert envelope_bound(n) < 1024 * 1024
