"""The accountant against closed forms: the classic conversion's analytic optimum, the exact
Gaussian epsilon (a lower bound no accountant may go under), and monotonicity."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from protocol.privacy_accounting import (
    ADD_REMOVE,
    REPLACE,
    PrivacyAccountant,
    classic_epsilon,
    closed_form_classic,
    epsilon,
    exact_gaussian_epsilon,
    gaussian_rdp,
)

SIGMAS = (0.5, 1.0, 2.0, 4.0, 16.0, 100.0)
ROUNDS = (1, 10, 100, 1000)


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("rounds", ROUNDS)
def test_classic_grid_matches_its_closed_form(sigma: float, rounds: int) -> None:
    rho = rounds * REPLACE**2 / (2 * sigma**2)
    closed = closed_form_classic(rho, 1e-5)
    grid = classic_epsilon(rounds, sigma=sigma, delta=1e-5)
    # a minimum over a subset of the orders is never below the continuous optimum, and the
    # grid is fine enough to come within 0.01% of it
    assert closed <= grid <= closed * (1 + 1e-4)


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("rounds", ROUNDS)
def test_improved_conversion_lies_between_exact_and_classic(sigma: float, rounds: int) -> None:
    improved = epsilon(rounds, sigma=sigma, delta=1e-5)
    # T Gaussian rounds are one Gaussian with sensitivity 2 sqrt(T) noise stds: its exact
    # epsilon is a lower bound on any valid accountant's
    exact = exact_gaussian_epsilon(REPLACE * math.sqrt(rounds) / sigma, 1e-5)
    assert exact <= improved < classic_epsilon(rounds, sigma=sigma, delta=1e-5)
    rho = rounds * REPLACE**2 / (2 * sigma**2)
    assert improved < closed_form_classic(rho, 1e-5)  # even the classic's continuous optimum
    assert improved < 1.25 * exact + 0.05  # and not far above it: RDP is nearly tight here


def test_exact_gaussian_epsilon_solves_balle_wang() -> None:
    # the analytic Gaussian mechanism: mu = 1, delta(eps) must equal the target at the answer
    from protocol.privacy_accounting import _gaussian_delta

    eps = exact_gaussian_epsilon(1.0, 1e-5)
    assert _gaussian_delta(eps, 1.0) == pytest.approx(1e-5, rel=1e-9)
    # a textbook check: sigma = sqrt(2 ln(1.25/delta))/eps is (eps, delta)-DP (eps < 1)
    sigma = math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert exact_gaussian_epsilon(1.0 / sigma, 1e-5) <= 0.5


def test_monotone_in_rounds_and_sigma() -> None:
    by_rounds = [epsilon(t, sigma=2.0, delta=1e-5) for t in range(0, 300, 7)]
    assert by_rounds[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(by_rounds))
    by_sigma = [epsilon(50, sigma=s, delta=1e-5) for s in np.geomspace(0.3, 300, 40)]
    assert all(a > b for a, b in itertools.pairwise(by_sigma))
    by_delta = [epsilon(50, sigma=4.0, delta=d) for d in (1e-3, 1e-5, 1e-8)]
    assert by_delta[0] < by_delta[1] < by_delta[2]


def test_add_remove_is_replace_with_twice_the_noise() -> None:
    # sensitivity C instead of 2C: the same epsilon as replace with sigma doubled
    assert epsilon(40, sigma=3.0, delta=1e-5, sensitivity=ADD_REMOVE) == pytest.approx(
        epsilon(40, sigma=6.0, delta=1e-5), rel=1e-12
    )
    assert gaussian_rdp(3.0, 2.0) == 3.0 * 4 / 8


def test_accountant_counts_only_rounds_trained() -> None:
    acc = PrivacyAccountant(3, sigma=2.0, delta=1e-5)
    for trained in ([True, True, False], [True, False, False], [True, True, False]):
        acc.record(np.array(trained))
    assert acc.rounds.tolist() == [3, 2, 0]
    expected = [epsilon(t, sigma=2.0, delta=1e-5) for t in (3, 2, 0)]
    assert acc.epsilons() == expected
    assert acc.max_epsilon() == expected[0]
