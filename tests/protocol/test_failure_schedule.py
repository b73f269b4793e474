"""The failure schedules rumor sim and rumor up share: per-link losses, down periods."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.errors import ConfigError
from protocol.failure_schedule import churn_schedule, crash_alive, down_periods, link_lost
from protocol.failures import Churn, Crash, PartitionWindow, parse_drop


def test_a_receiver_drawing_its_own_links_gets_the_simulators_bits() -> None:
    src = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    dst = np.roll(src, -1)
    for round in range(20):
        together = link_lost(0.3, src, dst, seed=5, round=round)
        alone = [
            bool(link_lost(0.3, [s], [d], seed=5, round=round)[0])
            for s, d in zip(src, dst, strict=True)
        ]
        assert together.tolist() == alone


def test_losses_are_at_the_rate_and_differ_by_direction_round_and_seed() -> None:
    src = np.arange(50_000)
    dst = (src * 7 + 3) % 50_000
    lost = link_lost(0.2, src, dst, seed=1, round=4)
    assert lost.mean() == pytest.approx(0.2, abs=0.01)
    assert not np.array_equal(lost, link_lost(0.2, dst, src, seed=1, round=4))
    assert not np.array_equal(lost, link_lost(0.2, src, dst, seed=1, round=5))
    assert not np.array_equal(lost, link_lost(0.2, src, dst, seed=2, round=4))
    # Two rounds' losses are independent: both lost about p^2 of the time.
    both = lost & link_lost(0.2, src, dst, seed=1, round=5)
    assert both.mean() == pytest.approx(0.04, abs=0.005)


def test_down_periods_turn_crashes_and_churn_back_into_crashes() -> None:
    crashes = (Crash(peer=2, at=30, recover=60), Crash(peer=0, at=90))
    up = np.stack([crash_alive(crashes, 4, round=r) for r in range(100)])
    assert down_periods(up) == [Crash(peer=2, at=30, recover=60), Crash(peer=0, at=90)]
    churn = churn_schedule(Churn(up=5, down=3), 6, 200, seed=0)
    rebuilt = np.stack([crash_alive(down_periods(churn), 6, round=r) for r in range(200)])
    assert np.array_equal(rebuilt, churn)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("1.5", "drop probability"), ("lots", "drop must be a probability")],
)
def test_a_bad_drop_is_a_config_error(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_drop(text)


def test_the_window_grammar_is_the_simulators() -> None:
    assert PartitionWindow.parse("40-70") == PartitionWindow(start=40, end=70, fraction=0.5)
    with pytest.raises(ConfigError, match="START < END"):
        PartitionWindow.parse("70-40")
