"""Reconnect delays: exponential backoff with full jitter (AWS Architecture Blog, 2015).

Full jitter draws the delay uniformly in ``[0, min(cap, base * 2**attempt)]``, so a fleet of
peers that lost the same broker does not come back in lockstep.

>>> import random
>>> delays = [backoff_delay(a, base=1.0, cap=8.0, rng=random.Random(0)) for a in range(6)]
>>> all(0.0 <= d <= min(8.0, 2.0**a) for a, d in enumerate(delays))
True
>>> backoff_ceiling(10, base=0.5, cap=30.0)
30.0
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocol.errors import ConfigError

__all__ = ["Backoff", "backoff_ceiling", "backoff_delay"]


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The largest delay of attempt ``attempt`` (0-based): ``min(cap, base * 2**attempt)``."""
    # min() before the power would still overflow for huge attempts; clamp the exponent.
    return min(cap, base * 2.0 ** min(attempt, 64))


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """A full-jitter delay for attempt ``attempt``: uniform in ``[0, backoff_ceiling]``."""
    return rng.uniform(0.0, backoff_ceiling(attempt, base=base, cap=cap))


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Reconnect policy: ``base_s`` doubles per failed attempt up to ``cap_s``, fully jittered."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 < self.base_s <= self.cap_s:
            raise ConfigError(
                f"backoff base_s={self.base_s}, cap_s={self.cap_s}: expected 0 < base_s <= cap_s"
            )

    def delay(self, attempt: int, rng: random.Random) -> float:
        return backoff_delay(attempt, base=self.base_s, cap=self.cap_s, rng=rng)
