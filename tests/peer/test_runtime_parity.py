"""Parity: four runtimes over a real broker end bit for bit where the simulator's engines end.

The daemon, the loop engine and the vector engine train with the same code and mix through the
same functions of protocol.mixing, which fix every rounding (float64 sums in node order, one
rounding to float32), so there is no tolerance: every codec whose frames depend only on the
model gives equal bits. ``randk`` is left out: its subsets follow each frame's seq, and a daemon
skips seq forward to an early keyframe whenever an in-neighbour comes online (its first
announcement included), which the simulator does not model, so the two draw different subsets.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from peer.broker import Broker
from sim.config import EngineName, SimConfig
from sim.runner import Simulation
from tests.peer.runtime_helpers import LEARNING, drive, mqtt_peer, peer_config

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROUNDS = 5


def _simulate(
    codec: str, engine: EngineName, aggregator: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The simulator's start and end [N, P] for the swarm of the test."""
    sim = Simulation(
        SimConfig(
            task="fmnist",
            model="mlp:hidden=16",
            topology="ring",
            peers=4,
            rounds=ROUNDS,
            partition="dirichlet:alpha=0.5",
            codec=codec,
            aggregator=aggregator,
            keyframe_interval=3,
            local_steps=2,
            batch_size=8,
            lr=0.05,
            seed=0,
            engine=engine,
            eval_every=ROUNDS,
        )
    )
    start = sim.engine.params().clone()
    for _ in sim.run():
        pass
    return start, sim.engine.params().clone()


@pytest.mark.parametrize(
    ("codec", "aggregator"),
    [
        ("raw", "mean"),
        ("fp16", "mean"),
        ("topk:fraction=0.1", "mean"),
        ("sign", "mean"),
        ("raw", "clip"),
        ("int8:block=16", "median"),
    ],
)
async def test_four_peers_end_exactly_where_both_engines_end(
    broker: Broker, codec: str, aggregator: str
) -> None:
    gossip = {"codec": codec, "aggregator": aggregator}
    configs = [
        peer_config(
            i,
            4,
            rounds=ROUNDS,
            swarm="parity",
            learning=LEARNING,
            broker={"port": broker.port},
            gossip=gossip | {"keyframe_interval": 3, "round_timeout_s": 20.0},
        )
        for i in range(4)
    ]
    peers = [mqtt_peer(c) for c in configs]
    results = await asyncio.gather(*(drive(t, r) for t, r in peers))
    daemon = torch.stack([x for _, x in results])
    received = [[s.received for s in stats] for stats, _ in results]
    assert all(r == 2 for row in received for r in row), f"a frame was missed: {received}"

    start, loop = _simulate(codec, "loop", aggregator)
    _, vector = _simulate(codec, "vector", aggregator)
    assert float((loop - start).abs().max()) > 1e-3, "nothing happened"
    gap = float((daemon - loop).abs().max())
    assert gap == 0.0, f"daemon and loop engine differ by up to {gap:.3e}"
    assert torch.equal(daemon, loop)
    assert torch.equal(vector, loop)


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
