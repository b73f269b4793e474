"""The runtime on the in-memory transport: exact gossip averaging, timeouts, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from peer.config import PeerConfig
from peer.tasks import TaskSpec, build_task
from tests.peer.runtime_helpers import peer_config, run_memory_swarm
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


def _p0_with_absent_p3(p0_rounds: int, p0_gossip: dict[str, object]) -> list[PeerConfig]:
    """p0..p2 of a 4-ring whose p3 never starts. p1 waits for p0's frames as long as p0 runs,
    and outlives it, so in p0's view only p3's liveness ever changes."""
    patient = {"round_timeout_s": 60.0, "silence_timeout_s": 120.0}
    return [
        peer_config(0, 4, rounds=p0_rounds, gossip=p0_gossip),
        peer_config(1, 4, rounds=p0_rounds + 2, gossip=patient),
        peer_config(2, 4, rounds=p0_rounds + 2, gossip=p0_gossip),  # p3 is its neighbour too
    ]


async def test_a_missing_neighbour_times_out_then_counts_as_dead() -> None:
    # No assumption on the machine's speed: whatever round p3's silence timeout expires in,
    # p0 waits round_timeout_s for it in every round before, and not after.
    timeout_s, silence_s = 0.25, 1.2
    gossip: dict[str, object] = {"round_timeout_s": timeout_s, "silence_timeout_s": silence_s}
    stats0 = (await run_memory_swarm(_p0_with_absent_p3(10, gossip)))[0][0]
    assert [s.round for s in stats0] == list(range(1, 11)), "p0 waited forever"
    assert max(s.received for s in stats0) == 1, "p1's frames, never one from p3"
    alive = [s.alive for s in stats0]
    assert alive == sorted(alive, reverse=True), f"p3 came back to life: {alive}"
    waited = [s for s in stats0 if s.alive == 2]
    assert all(s.timings.wait >= 0.8 * timeout_s for s in waited), "p0 did not wait for p3"
    # Each round that still counts p3 alive takes round_timeout_s, so the silence timeout
    # (counted from p0's start) ends them after at most silence_s / timeout_s rounds.
    assert len(waited) <= silence_s / timeout_s + 1, f"p3 outlived its silence timeout: {alive}"
    assert alive[-1] == 1, "a silent neighbour leaves the mixing set"


async def test_an_unheard_neighbour_gets_the_silence_timeout_as_grace() -> None:
    # A swarm starting together must not see everyone dead at first. The silence timeout is far
    # beyond what two rounds take even on a loaded machine.
    gossip: dict[str, object] = {"round_timeout_s": 0.25, "silence_timeout_s": 120.0}
    stats0 = (await run_memory_swarm(_p0_with_absent_p3(2, gossip)))[0][0]
    assert [s.alive for s in stats0] == [2, 2], "p3 unheard, yet within its grace"
    assert all(s.timings.wait >= 0.2 for s in stats0), "p0 did not wait for p3"


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
