"""Every aggregation rule: the vector engine ends at the loop engine's parameters bit for bit.

The vector engine batches receivers with the same number of messages ([n, K, P]); each rule's
result for a row does not depend on the other rows of its batch (sorting is exact, and sums run
in float64 in a fixed order), so there is no tolerance. An irregular graph gives each edge its own
weight, so a weight paired with the wrong sender shows; drops and a Byzantine sender make the
receivers' message counts differ from round to round.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sim.config import SimConfig, failures_from_mapping
from tests.sim.conftest import run

RULES = ["mean", "clip", "clip:tau=0.3", "trimmed_mean:b=1", "median"]
BASE = SimConfig(
    task="synthetic",
    topology="erdos_renyi:p=0.4",  # irregular: weights differ per edge
    peers=10,
    lr=0.1,
    rounds=15,
    local_steps=2,
    keyframe_interval=4,
    eval_every=15,
)
FAILURES: dict[str, dict[str, object]] = {
    "none": {},
    "drop+signflip": {"drop": 0.3, "byzantine": "0.2:attack=signflip"},
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("codec", ["raw", "int8:block=16"])
@pytest.mark.parametrize("rule", RULES)
def test_vector_and_loop_engines_agree_bit_for_bit(rule: str, codec: str, failure: str) -> None:
    config = dataclasses.replace(
        BASE, aggregator=rule, codec=codec, failures=failures_from_mapping(FAILURES[failure])
    )
    _, start, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop"))
    assert float((loop - start).abs().max()) > 1e-3, "nothing happened"
    assert torch.equal(vector, loop), f"differ by up to {float((vector - loop).abs().max()):.3e}"


def test_a_robust_rule_changes_the_outcome_under_attack() -> None:
    attacked = failures_from_mapping({"byzantine": "0.2:attack=signflip"})
    ends = {
        rule: run(dataclasses.replace(BASE, aggregator=rule, failures=attacked))[2]
        for rule in ("mean", "median")
    }
    assert not torch.equal(ends["mean"], ends["median"])


def test_an_unknown_aggregator_is_a_config_error() -> None:
    from protocol.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown aggregator 'krum'"):
        SimConfig(aggregator="krum")
