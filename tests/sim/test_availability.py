"""``--availability``: the daemon's availability window as a seeded failure schedule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from protocol.errors import ConfigError
from sim.availability import Availability, availability_schedule
from sim.config import SimConfig, failures_from_mapping
from sim.runner import Simulation


def test_the_schedule_is_seeded_and_keeps_each_window() -> None:
    spec = Availability(fraction=0.25, period=24, window=8)
    sched = availability_schedule(spec, 64, 96, seed=3)
    assert np.array_equal(sched, availability_schedule(spec, 64, 96, seed=3))
    assert not np.array_equal(sched, availability_schedule(spec, 64, 96, seed=4))
    limited = ~sched.all(axis=0)
    assert limited.sum() == 16
    assert (sched[:, limited].sum(axis=0) == 4 * 8).all()  # 8 rounds in each of 4 days
    for day in range(4):  # one contiguous window per day, modulo the period
        block = sched[day * 24 : (day + 1) * 24, limited]
        assert (block.sum(axis=0) == 8).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "FRACTION must be in"),
        ("0.5:period=8,window=8", "window < period"),
        ("0.5:hours=8", "hours"),
        ("half", "expected FRACTION"),
        ("0.5:window=2.5", "whole number"),
    ],
)
def test_bad_availability_specs(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Availability.parse(text)


def test_a_paused_peer_keeps_its_model_and_rejoins() -> None:
    config = SimConfig(
        task="consensus",
        topology="torus",
        peers=16,
        rounds=48,
        failures=failures_from_mapping({"availability": "0.25:period=12,window=4"}),
    )
    schedule = availability_schedule(Availability.parse("0.25:period=12,window=4"), 16, 48, seed=0)
    sim = Simulation(config)
    params = [sim.engine.params().clone()]
    for _ in sim.run():
        params.append(sim.engine.params().clone())
    moved = torch.stack([(b - a).abs().amax(dim=1) > 0 for a, b in itertools.pairwise(params)])
    paused = ~torch.from_numpy(schedule)
    assert paused.any()
    assert not moved[paused].any(), "a paused peer's model changed"
    assert moved[~paused].float().mean() > 0.9, "the available peers stalled"
