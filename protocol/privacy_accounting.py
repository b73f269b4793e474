"""Privacy accounting of the local Gaussian mechanism (:mod:`protocol.privacy`): Renyi DP,
composed over the rounds a peer trained, converted to (epsilon, delta).

Neighbouring relation: two runs are neighbours when ONE peer's whole local dataset is replaced by
any other dataset (every other input fixed). That peer's clipped update u has ||u|| <= C under
either dataset, so the two updates differ by at most ``2C``: the L2 sensitivity is
:data:`REPLACE` = 2 in units of C. (Under add/remove of a whole dataset, an update against no
update, it would be C, :data:`ADD_REMOVE`, which gives 4x smaller Renyi divergences; rumor
reports the replace figure, the one that hides a peer's data from its neighbours whatever it is.)

One round is the Gaussian mechanism with noise std ``sigma * C``, so its Renyi DP of order
``alpha`` is ``alpha * s^2 / (2 sigma^2)`` with ``s`` the sensitivity in units of C (Mironov
2017, Prop. 7); T adaptively composed rounds add up to ``T * alpha * s^2 / (2 sigma^2)``, that is
``rho * alpha`` with ``rho = T s^2 / (2 sigma^2)``. The conversion to (epsilon, delta) is the
improved one of Canonne, Kamath and Steinke 2020 (Prop. 12; also Balle et al. 2020, Thm. 21):

    epsilon = min over alpha > 1 of
              rho*alpha + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha-1),

over the grid :data:`ORDERS`. The classic conversion (Mironov 2017, Prop. 3),
``rho*alpha + log(1/delta)/(alpha-1)``, whose optimum over continuous alpha is
``rho + 2 sqrt(rho log(1/delta))``, is never smaller (:func:`classic_epsilon`). Both are upper
bounds: a Gaussian's exact epsilon (Balle and Wang 2018, :func:`exact_gaussian_epsilon`) is
smaller still, and T rounds of it are one Gaussian with sensitivity ``s sqrt(T)``.

>>> round(epsilon(100, sigma=4.0, delta=1e-5), 3)
35.067
>>> epsilon(0, sigma=4.0, delta=1e-5)
0.0
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "ADD_REMOVE",
    "ORDERS",
    "REPLACE",
    "PrivacyAccountant",
    "classic_epsilon",
    "closed_form_classic",
    "epsilon",
    "exact_gaussian_epsilon",
    "gaussian_rdp",
]

REPLACE = 2.0
"""L2 sensitivity, in units of the clip C, when one peer's dataset is replaced by another."""
ADD_REMOVE = 1.0
"""L2 sensitivity, in units of C, when one peer's dataset is added or removed."""

ORDERS: npt.NDArray[np.float64] = 1.0 + np.geomspace(1e-4, 1e6, 4001)
"""Renyi orders the conversions minimise over: 1.0001 to about 10^6, 400 per decade of
``alpha - 1`` (so the grid's optimum is within 0.3% of the continuous one's alpha)."""


def gaussian_rdp(
    alpha: float | npt.NDArray[np.float64], sigma: float, *, sensitivity: float = REPLACE
) -> float | npt.NDArray[np.float64]:
    """Renyi DP of order ``alpha`` of one round: ``alpha * sensitivity^2 / (2 sigma^2)``.

    >>> gaussian_rdp(2.0, 1.0, sensitivity=1.0)
    1.0
    """
    return alpha * sensitivity**2 / (2.0 * sigma**2)


def _rho(rounds: int, sigma: float, sensitivity: float) -> float:
    return rounds * sensitivity**2 / (2.0 * sigma**2)


def closed_form_classic(rho: float, delta: float) -> float:
    """The classic conversion's optimum over continuous alpha for RDP ``rho * alpha``:
    ``rho + 2 sqrt(rho log(1/delta))`` (at ``alpha = 1 + sqrt(log(1/delta) / rho)``).

    >>> closed_form_classic(0.5, math.exp(-2))
    2.5
    """
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def classic_epsilon(
    rounds: int, *, sigma: float, delta: float, sensitivity: float = REPLACE
) -> float:
    """epsilon by the classic conversion over :data:`ORDERS`:
    ``min rho*alpha + log(1/delta)/(alpha-1)``."""
    if rounds <= 0:
        return 0.0
    rho = _rho(rounds, sigma, sensitivity)
    values = rho * ORDERS + math.log(1.0 / delta) / (ORDERS - 1.0)
    return float(values.min())


@lru_cache(maxsize=4096)
def epsilon(rounds: int, *, sigma: float, delta: float, sensitivity: float = REPLACE) -> float:
    """epsilon at ``delta`` after ``rounds`` rounds with noise multiplier ``sigma``: the
    improved conversion (module docstring) over :data:`ORDERS`, never below 0."""
    if rounds <= 0:
        return 0.0
    rho = _rho(rounds, sigma, sensitivity)
    a = ORDERS
    values = rho * a + np.log1p(-1.0 / a) - (math.log(delta) + np.log(a)) / (a - 1.0)
    return max(0.0, float(values.min()))


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _gaussian_delta(eps: float, mu: float) -> float:
    """Balle and Wang 2018, Thm. 8: the smallest delta of the Gaussian mechanism with
    sensitivity/std ``mu`` at ``eps``."""
    tail = _phi(-mu / 2 - eps / mu)
    return _phi(mu / 2 - eps / mu) - (math.exp(eps + math.log(tail)) if tail > 0 else 0.0)


def exact_gaussian_epsilon(mu: float, delta: float) -> float:
    """The exact (smallest) epsilon at ``delta`` of one Gaussian mechanism whose sensitivity is
    ``mu`` noise standard deviations (analytic Gaussian mechanism, Balle and Wang 2018), by
    bisection. T rounds with multiplier sigma and sensitivity s are ``mu = s sqrt(T) / sigma``.

    >>> exact_gaussian_epsilon(1.0, 0.5)
    0.0
    >>> 0 < exact_gaussian_epsilon(1.0, 1e-5) < epsilon(1, sigma=2.0, delta=1e-5)
    True
    """
    if _gaussian_delta(0.0, mu) <= delta:
        return 0.0
    lo, hi = 0.0, 1.0
    while _gaussian_delta(hi, mu) > delta:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _gaussian_delta(mid, mu) > delta else (lo, mid)
    return hi


class PrivacyAccountant:
    """Rounds trained per peer, and the epsilon each has spent so far (same sigma for all)."""

    def __init__(
        self, peers: int, *, sigma: float, delta: float, sensitivity: float = REPLACE
    ) -> None:
        self.sigma, self.delta, self.sensitivity = sigma, delta, sensitivity
        self.rounds = np.zeros(peers, dtype=np.int64)
        """Rounds in which each peer released a noised update."""

    def record(self, trained: npt.NDArray[np.bool_]) -> None:
        """Count one more mechanism for every peer that trained (and so added noise)."""
        self.rounds += trained.astype(np.int64)

    def epsilons(self) -> list[float]:
        """Each peer's epsilon at ``delta`` so far.

        >>> acc = PrivacyAccountant(3, sigma=4.0, delta=1e-5)
        >>> acc.record(np.array([True, True, False]))
        >>> acc.epsilons()[2], acc.epsilons()[0] == epsilon(1, sigma=4.0, delta=1e-5)
        (0.0, True)
        """
        return [self.of(int(t)) for t in self.rounds.tolist()]

    def of(self, rounds: int) -> float:
        """The epsilon of a peer that trained ``rounds`` rounds."""
        return epsilon(rounds, sigma=self.sigma, delta=self.delta, sensitivity=self.sensitivity)

    def max_epsilon(self) -> float:
        """The largest epsilon over the peers (the one who trained most)."""
        return self.of(int(self.rounds.max(initial=0)))
