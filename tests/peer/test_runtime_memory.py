"""The runtime on the in-memory transport: exact gossip averaging, timeouts, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from peer.checkpoint import read_model
from peer.config import PeerConfig
from peer.tasks import TaskSpec, build_task
from peer.transport import ONLINE, MemoryBroker, MemoryTransport
from protocol.topics import topic
from tests.peer.runtime_helpers import drive, memory_peer, peer_config, run_memory_swarm
from topology import build_graph, mixing_matrix


def _expected(peers: int, rounds: int, family: str = "ring") -> torch.Tensor:
    """W^R x0 for the consensus task (raw codec, gamma 1: plain averaging)."""
    x0 = build_task(TaskSpec(task="consensus", peers=peers)).init_params(seed=0).numpy()
    w = mixing_matrix(build_graph(family, peers, seed=0))
    return torch.from_numpy(np.linalg.matrix_power(w, rounds) @ x0)


async def test_sync_ring_averages_exactly() -> None:
    configs = [peer_config(i, 4, rounds=5) for i in range(4)]
    results = await run_memory_swarm(configs)
    expected = _expected(4, 5)
    for i, (stats, x) in enumerate(results):
        assert [s.round for s in stats] == [1, 2, 3, 4, 5]
        assert stats[-1].done
        assert all(s.received == 2 for s in stats)
        assert stats[-1].rejected_total == 0
        # Frames carry float32: the float64 models agree to float32 rounding.
        torch.testing.assert_close(x, expected[i], rtol=1e-5, atol=1e-6)


async def test_a_neighbour_that_never_started_is_not_waited_for() -> None:
    # A silence timeout far longer than the run: were p3 given it as grace, every round would
    # wait round_timeout_s for it and count a timeout.
    gossip = {"round_timeout_s": 0.25, "silence_timeout_s": 600.0}
    configs = [peer_config(i, 4, rounds=10, gossip=gossip) for i in range(3)]  # p3 never starts
    results = await run_memory_swarm(configs)
    for name, (stats, _) in zip(("p0", "p1", "p2"), results, strict=True):
        assert [s.round for s in stats] == list(range(1, 11)), name
        assert stats[-1].timeouts == 0, f"{name} waited for p3 in {stats[-1].timeouts} rounds"
    stats0 = results[0][0]  # p0's neighbours: p1 (running) and p3 (never started)
    assert [s.alive for s in stats0] == [1] * 10
    assert [s.received for s in stats0] == [1] * 10


async def test_a_neighbour_that_stops_sending_times_out_then_counts_as_dead() -> None:
    # p3 is announced online (as a peer that started and then hung would be) but sends nothing;
    # p1 never starts.
    gossip = {"round_timeout_s": 0.25, "silence_timeout_s": 1.0}
    broker = MemoryBroker()
    hung = MemoryTransport(broker, client_id="hung")
    async with hung:
        await hung.state.wait_up()
        await hung.publish(topic("presence", swarm="t", peer="p3"), ONLINE, qos=1, retain=True)
    transport, runtime = memory_peer(broker, peer_config(0, 4, rounds=12, gossip=gossip))
    stats, _ = await drive(transport, runtime)
    assert [s.round for s in stats] == list(range(1, 13)), "p0 waited forever"
    assert stats[0].alive == 1, "p3 announced (p1 never heard of)"
    assert stats[0].timeouts == 1, "p3 announced: waited for"
    # Each round waits 0.25 s for p3, so within 12 rounds its 1 s of silence runs out.
    assert stats[-1].alive == 0, "a silent neighbour leaves the live set"
    assert stats[-1].timeouts < 12, "and is no longer waited for"


async def test_async_mode_runs_without_a_barrier() -> None:
    configs = [peer_config(i, 3, rounds=5, gossip={"mode": "async"}) for i in range(3)]
    results = await run_memory_swarm(configs)
    for stats, x in results:
        assert [s.round for s in stats] == [1, 2, 3, 4, 5]
        assert torch.isfinite(x).all()
    # Averaging pulls the three models together.
    final = torch.stack([x for _, x in results])
    start = build_task(TaskSpec(task="consensus", peers=3)).init_params(seed=0)
    assert float(final.var(0).sum()) < 0.5 * float(start.var(0).sum())


async def test_resume_from_checkpoint_at_its_round(tmp_path: Path) -> None:
    dirs = [tmp_path / f"p{i}" for i in range(2)]
    first = [
        peer_config(i, 2, family="complete", rounds=4, checkpoint_dir=dirs[i]) for i in range(2)
    ]
    await run_memory_swarm(first)
    again = [
        peer_config(i, 2, family="complete", rounds=7, checkpoint_dir=dirs[i]) for i in range(2)
    ]
    results = await run_memory_swarm(again)
    for stats, _ in results:
        assert [s.round for s in stats] == [5, 6, 7]
        # The first frame after a restart is a keyframe with a fresh seq: neighbours accept it.
        assert stats[-1].rejected_total == 0
        assert stats[0].received == 1


async def test_a_restart_restores_the_optimizer_state(tmp_path: Path) -> None:
    """Adam's moments and step count and BatchNorm's counters survive a restart: stopping
    after round 2 and resuming ends where an uninterrupted run ends."""
    learning = {
        "data": "tests.peer.plugins.usermods:blobs",
        "model": "tests.peer.plugins.usermods:bnnet",
        "optimizer": "adam",
        "local_steps": 2,
        "batch_size": 8,
        "lr": 0.01,
    }

    def configs(rounds: int, where: Path) -> list[PeerConfig]:
        return [
            peer_config(
                i,
                2,
                family="complete",
                rounds=rounds,
                learning=learning,
                checkpoint_dir=where / f"p{i}",
            )
            for i in range(2)
        ]

    straight = await run_memory_swarm(configs(4, tmp_path / "straight"))
    await run_memory_swarm(configs(2, tmp_path / "restarted"))
    resumed = await run_memory_swarm(configs(4, tmp_path / "restarted"))
    assert [s.round for s in resumed[0][0]] == [3, 4]
    for (_, a), (_, b) in zip(straight, resumed, strict=True):
        assert float((a - b).abs().max()) <= 1e-6
    saved = read_model(tmp_path / "restarted" / "p0")
    assert saved.round == 4
    assert saved.model_spec == learning["model"]
    assert int(saved.integer_buffers["1.num_batches_tracked"]) == 4 * 2
    assert torch.equal(saved.params, resumed[0][1])
