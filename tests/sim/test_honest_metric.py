"""Runs with Byzantine peers report the honest peers' metric apart from everyone's."""

from __future__ import annotations

import dataclasses

import pytest

from sim.config import SimConfig, failures_from_mapping
from sim.runner import Simulation

BASE = SimConfig(task="synthetic", topology="ring", peers=8, rounds=6, eval_every=3, lr=0.1)


def test_the_honest_metric_covers_exactly_the_honest_peers() -> None:
    attacked = failures_from_mapping({"byzantine": "0.25:attack=signflip,scale=3"})
    sim = Simulation(dataclasses.replace(BASE, failures=attacked))
    final = list(sim.run())[-1]
    honest = ~sim.failures.byzantine
    assert 0 < int(honest.sum()) < 8
    alone = sim.evaluator.evaluate(sim.engine.params(), honest)
    assert final.acc_honest_mean == pytest.approx(alone["acc_mean"], abs=1e-9)
    assert final.acc_honest_worst == pytest.approx(alone["acc_min"], abs=1e-9)
    assert final.to_json()["acc_honest_mean"] == final.acc_honest_mean


def test_without_byzantine_peers_there_is_no_honest_metric() -> None:
    final = list(Simulation(BASE).run())[-1]
    assert final.acc_mean is not None
    assert final.acc_honest_mean is None
    assert final.acc_honest_worst is None
