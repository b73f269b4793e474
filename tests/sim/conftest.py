"""Helpers shared by the simulator tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch

import peer.cli
from sim.config import SimConfig
from sim.metrics import SwarmRoundStats
from sim.runner import Simulation


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: the problems here are tiny, and on a busy 2-core machine every
    parallel op can stall a scheduler tick; it also makes the engines bit-comparable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(config: SimConfig) -> tuple[list[SwarmRoundStats], torch.Tensor, torch.Tensor]:
    """Stats of round 0 (the start) and of every round, the initial and the final [N, P]."""
    sim = Simulation(config)
    x0 = sim.engine.params().clone()
    stats = [sim.initial_stats(), *sim.run()]
    return stats, x0, sim.engine.params().clone()


@dataclass(frozen=True)
class _Entry:
    name: str
    load: Callable[[], Callable[..., None]]


@pytest.fixture
def rumor(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """``rumor`` (peer.cli.main) with sim's commands registered as pyproject's entry point does."""
    from sim.cli import register

    monkeypatch.setattr(peer.cli, "entry_points", lambda group: [_Entry("sim", lambda: register)])
    return peer.cli.main
