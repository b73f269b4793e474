"""A compromised peer (``rumor peer --attack``): valid signed frames carrying the attack."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import torch

from peer.config import PeerConfig
from peer.runtime import PeerRuntime, load_learner
from peer.runtime.attack import Attacker, poison_labels
from peer.security.credentials import Credentials
from peer.transport import MemoryBroker, MemoryTransport
from protocol.errors import ConfigError
from protocol.signing import SigningKey, Trust
from protocol.spec import Spec
from tests.peer.runtime_helpers import drive, memory_peer, peer_config

PEERS = 3
KEYS = [SigningKey.from_seed(bytes([i + 7] * 32)) for i in range(PEERS)]
TRUST = Trust({f"p{i}": k.public_bytes() for i, k in enumerate(KEYS)})


def _peer(
    broker: MemoryBroker,
    config: PeerConfig,
    index: int,
    attack: Spec | None,
    start: torch.Tensor | None,
) -> tuple[MemoryTransport, PeerRuntime]:
    learner = None
    if start is not None:
        learner = dataclasses.replace(load_learner(config, index=index, peers=PEERS), start=start)
    return memory_peer(
        broker,
        config,
        learner,
        credentials=Credentials(key=KEYS[index], trust=TRUST),
        attacker=None if attack is None else Attacker(attack=attack, seed=0, index=index),
    )


async def _swarm(
    rounds: int, attack: Spec | None, start0: torch.Tensor | None = None
) -> list[PeerRuntime]:
    broker = MemoryBroker()
    configs = [peer_config(i, PEERS, rounds=rounds) for i in range(PEERS)]
    peers = [
        _peer(broker, c, i, attack if i == 0 else None, start0 if i == 0 else None)
        for i, c in enumerate(configs)
    ]
    results = await asyncio.gather(*(drive(t, r, meet=True) for t, r in peers))
    for stats, _ in results:
        assert all(not s.rejected for s in stats), "a frame was rejected"
    return [r for _, r in peers]


async def test_a_signflip_peer_sends_valid_signed_frames_of_minus_its_model() -> None:
    attacked = await _swarm(1, Spec("signflip", {"scale": 1.0}))
    start = attacked[0].learner.start
    # the same first round as an honest p0 whose model is -start
    honest = await _swarm(1, None, start0=-start)
    for a, h in zip(attacked[1:], honest[1:], strict=True):
        assert torch.equal(a.x, h.x)
        assert not torch.equal(a.x, a.learner.start), "nothing was mixed"


async def test_an_attacker_forges_from_what_it_received_and_never_mixes() -> None:
    attack = Spec("ipm", {"eps": 0.1})
    attacker, p1, _ = await _swarm(1, attack)
    # round 0: nothing received yet, its own model (frames carry float32: compare to that)
    _close(p1.inbound.copy_for("p0", 0, staleness=None), attacker.learner.start)
    attacker, p1, p2 = await _swarm(2, attack)
    assert torch.equal(attacker.x, attacker.learner.start), "the attacker mixed"
    # round 1: -0.1 * the mean of the copies of round 0
    seen = torch.stack([p1.learner.start, p2.learner.start]).double().mean(dim=0)
    _close(p1.inbound.copy_for("p0", 1, staleness=None), -0.1 * seen)


def _close(copy: torch.Tensor | None, expected: torch.Tensor) -> None:
    assert copy is not None
    torch.testing.assert_close(copy, expected, rtol=1e-6, atol=1e-7)


def test_labelflip_flips_the_shard_labels_and_refuses_a_task_without_labels() -> None:
    config = peer_config(0, 4, learning={"task": "synthetic"})
    learner = load_learner(config, index=0, peers=4)
    poisoned = poison_labels(learner)
    assert learner.shard is not None
    assert poisoned.shard is not None
    rows = torch.arange(len(learner.shard))
    clean, flipped = learner.shard.subset(rows), poisoned.shard.subset(rows)
    assert torch.equal(flipped.y, clean.num_classes - 1 - clean.y)
    assert torch.equal(flipped.x, clean.x)
    consensus = load_learner(peer_config(0, 4), index=0, peers=4)
    with pytest.raises(ConfigError, match="labelflip needs a task with training data"):
        poison_labels(consensus)
