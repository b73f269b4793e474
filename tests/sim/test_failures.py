"""Failure models: formats, reproducibility and the rates they promise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protocol.attacks import published
from protocol.errors import ConfigError
from protocol.spec import Spec
from sim.config import failures_from_mapping
from sim.failure_masks import FailureModel, churn_schedule, drop_mask
from sim.failures import Byzantine, Churn, Crash, FailureConfig, PartitionWindow, Stragglers


def test_parsers_read_the_documented_formats() -> None:
    assert Crash.parse("3@50") == Crash(peer=3, at=50)
    assert Churn.parse("up=20,down=5,fraction=0.5") == Churn(up=20, down=5, fraction=0.5)
    assert PartitionWindow.parse("10-20:fraction=0.25") == PartitionWindow(
        start=10, end=20, fraction=0.25
    )
    assert Stragglers.parse("0.3:steps=1") == Stragglers(fraction=0.3, steps=1)
    assert Byzantine.parse("0.1:attack=noise,scale=2") == Byzantine(
        fraction=0.1, attack=Spec("noise", {"scale": 2})
    )
    assert Byzantine.parse("0.2") == Byzantine(fraction=0.2, attack=Spec("signflip"))


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"drop": 1.5}, "drop probability"),
        ({"crash": "3@"}, "invalid crash"),
        ({"crash": "3@9-4"}, "must come after"),
        ({"churn": "up=5"}, "expected up=U,down=D"),
        ({"churn": "up=0.5,down=3"}, ">= 1 round"),
        ({"partition_window": "9-3"}, "START < END"),
        ({"stragglers": "half"}, "expected FRACTION"),
        ({"byzantine": "0.1:attack=lie"}, "unknown attack 'lie'; expected one of signflip"),
        ({"byzantine": "0.1:attack=ipm,scale=2"}, "ipm: unknown parameter.*scale; accepted: eps"),
        ({"byzantine": "0.1:attack=alie,z=inf"}, "alie: z=inf out of range"),
        ({"byzantine": "0.1:attack=dissensus,eps=0"}, "dissensus: eps=0 out of range"),
        ({"byzantine": "0.1:attack=noise,scale=x"}, "noise: scale='x' is not a number"),
        ({"byzantine": "lots:attack=ipm"}, "invalid byzantine 'lots:attack=ipm'"),
        ({"byzantine": "1.5:attack=ipm"}, "byzantine fraction must be a number in"),
        ({"jitter": 3}, "unknown failure setting"),
    ],
)
def test_bad_settings_raise_config_errors_naming_them(
    values: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        failures_from_mapping(values)


def test_crash_names_an_existing_peer() -> None:
    with pytest.raises(ConfigError, match="peer 9 does not exist"):
        FailureConfig(crashes=(Crash(peer=9, at=1),)).check(8)


def test_drops_are_reproducible_independent_and_at_the_rate() -> None:
    a = drop_mask(0.3, 20_000, seed=1, round=4)
    assert np.array_equal(a, drop_mask(0.3, 20_000, seed=1, round=4))
    assert not np.array_equal(a, drop_mask(0.3, 20_000, seed=1, round=5))
    assert a.mean() == pytest.approx(0.3, abs=0.015)


def test_churn_periods_have_the_requested_means() -> None:
    up = churn_schedule(Churn(up=8, down=2), 200, 2_000, seed=0)
    assert up.mean() == pytest.approx(0.8, abs=0.02)  # stationary fraction up/(up+down)
    flips = np.diff(up.astype(np.int8), axis=0) != 0
    periods = up.size / max(int(flips.sum()), 1)
    assert periods == pytest.approx(5.0, rel=0.1)  # mean period (8 + 2) / 2


def test_failure_model_masks() -> None:
    config = failures_from_mapping(
        {"crash": "0@2-4", "partition_window": "1-3", "stragglers": "0.5:steps=1"}
    )
    model = FailureModel(config, peers=4, rounds=10, local_steps=3, seed=0)
    assert model.alive(2).tolist() == [False, True, True, True]
    assert model.alive(4).all()
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    assert model.lost(src, dst, round=1).tolist() == [False, True, False, True]
    assert not model.lost(src, dst, round=3).any()
    steps = model.steps(model.alive(2))
    assert steps[0] == 0
    assert sorted(steps[1:].tolist()) in ([1, 3, 3], [1, 1, 3])
    assert (model.steps(model.alive(5)) == 1).sum() == 2


def test_byzantine_noise_is_distinct_for_every_round_and_peer() -> None:
    """Noise comes from the failure model's own "noise" stream: past 65,537 peers the old
    ``(seed * 1_000_003 + round) * 65_537 + peer`` seed repeated other peers' noise."""
    attack, x = Spec("noise"), torch.zeros(8)
    none = torch.zeros(0, 8)
    first = published(attack, x, none, seed=0, round=1, peer=0)
    assert not torch.equal(first, published(attack, x, none, seed=0, round=0, peer=65_537))
    assert torch.equal(first, published(attack, x, none, seed=0, round=1, peer=0))
    assert not torch.equal(first, published(attack, x, none, seed=1, round=1, peer=0))
