"""Parity: four runtimes over a real broker end where the simulator's vector engine ends."""

from __future__ import annotations

import asyncio

import pytest
import torch

from peer.broker import Broker
from sim.config import SimConfig
from sim.runner import Simulation
from tests.peer.runtime_helpers import drive, mqtt_peer, peer_config

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROUNDS = 5


@pytest.mark.parametrize("codec", ["raw", "topk:fraction=0.1"])
async def test_four_peers_match_the_vector_engine(broker: Broker, codec: str) -> None:
    learning = {
        "task": "fmnist",
        "model": "mlp:hidden=16",
        "partition": "dirichlet:alpha=0.5",
        "local_steps": 2,
        "batch_size": 8,
        "lr": 0.05,
        "seed": 0,
    }
    configs = [
        peer_config(
            i,
            4,
            rounds=ROUNDS,
            swarm="parity",
            learning=learning,
            broker={"port": broker.port},
            gossip={"codec": codec, "keyframe_interval": 3, "round_timeout_s": 20.0},
        )
        for i in range(4)
    ]
    peers = [mqtt_peer(c) for c in configs]
    results = await asyncio.gather(*(drive(t, r) for t, r in peers))
    daemon = torch.stack([x for _, x in results])
    received = [[s.received for s in stats] for stats, _ in results]
    assert all(r == 2 for row in received for r in row), f"a frame was missed: {received}"

    sim = Simulation(
        SimConfig(
            task="fmnist",
            model="mlp:hidden=16",
            topology="ring",
            peers=4,
            rounds=ROUNDS,
            partition="dirichlet:alpha=0.5",
            codec=codec,
            keyframe_interval=3,
            local_steps=2,
            batch_size=8,
            lr=0.05,
            seed=0,
            engine="vector",
            eval_every=ROUNDS,
        )
    )
    start = sim.engine.params().clone()
    for _ in sim.run():
        pass
    expected = sim.engine.params()
    assert float((expected - start).abs().max()) > 1e-3, "nothing happened"
    gap = float((daemon - expected).abs().max() / expected.abs().max())
    assert gap <= 1e-4, gap


MODS = "tests.peer.plugins.usermods"


async def test_four_peers_with_a_batchnorm_module_and_adam_match_the_loop_engine(
    broker: Broker,
) -> None:
    """The daemon runs a plug-in module as the loop engine does: the module with autograd."""
    learning = {
        "data": f"{MODS}:blobs",
        "model": f"{MODS}:bnnet",
        "optimizer": "adam",
        "local_steps": 2,
        "batch_size": 8,
        "lr": 0.01,
        "seed": 0,
    }
    configs = [
        peer_config(
            i,
            4,
            rounds=ROUNDS,
            swarm="modparity",
            learning=learning,
            broker={"port": broker.port},
            gossip={"keyframe_interval": 3, "round_timeout_s": 20.0},
        )
        for i in range(4)
    ]
    results = await asyncio.gather(*(drive(t, r) for t, r in map(mqtt_peer, configs)))
    daemon = torch.stack([x for _, x in results])
    assert all(s.received == 2 for stats, _ in results for s in stats)
    sim = Simulation(
        SimConfig(
            data=f"{MODS}:blobs",
            model=f"{MODS}:bnnet",
            optimizer="adam",
            topology="ring",
            peers=4,
            rounds=ROUNDS,
            keyframe_interval=3,
            local_steps=2,
            batch_size=8,
            lr=0.01,
            seed=0,
            engine="loop",
            eval_every=ROUNDS,
        )
    )
    start = sim.engine.params().clone()
    last = list(sim.run())[-1]
    expected = sim.engine.params()
    assert float((expected - start).abs().max()) > 1e-2, "nothing happened"
    assert float((daemon - expected).abs().max()) <= 1e-5
    # each peer reports the metric of its own test set, as the simulator computes it
    accuracies = [stats[-1].accuracy for stats, _ in results]
    assert last.acc_mean is not None
    assert abs(sum(a for a in accuracies if a is not None) / 4 - last.acc_mean) <= 1e-6
