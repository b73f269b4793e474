"""Availability windows as a failure schedule: the simulator's model of ``[availability]``.

``--availability FRACTION[:period=P,window=W]``: a seeded FRACTION of the peers may train only
W rounds out of every P (a day of P rounds, as ``hours = "22:00-06:00"`` is 8 hours of 24), each
from its own seeded start within the period (devices in different homes keep different hours).
Outside its window a peer is paused: it trains, publishes and mixes nothing, as a daemon outside
its window does, and no one waits for it; it resumes where it stopped.

>>> Availability.parse("0.5:period=24,window=8")
Availability(fraction=0.5, period=24, window=8)
>>> sched = availability_schedule(Availability(fraction=1.0, period=4, window=1), 3, 8, seed=0)
>>> sched.sum(axis=0).tolist()  # each peer trains 1 round in 4
[2, 2, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.errors import ConfigError
from protocol.spec import parse_spec

__all__ = ["Availability", "availability_schedule"]

_SEED_STREAM = 6
"""Distinct from the other failure models' streams (sim.failure_masks)."""


@dataclass(frozen=True, kw_only=True)
class Availability:
    fraction: float
    period: int = 24
    window: int = 8

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 1:
            raise ConfigError(f"availability: FRACTION must be in [0, 1], got {self.fraction}")
        if not 1 <= self.window < self.period:
            raise ConfigError(
                f"availability: need 1 <= window < period, got window={self.window}, "
                f"period={self.period}"
            )

    @classmethod
    def parse(cls, text: str) -> Availability:
        head, _, rest = text.strip().partition(":")
        spec = parse_spec("availability:" + rest)
        spec.expect("period", "window")
        try:
            fraction = float(head)
        except ValueError as exc:
            raise ConfigError(
                f"invalid availability {text!r}; expected FRACTION[:period=P,window=W]"
            ) from exc
        values = dict(spec.params)
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"availability: {key} must be a whole number of rounds")
        return cls(fraction=fraction, **values)  # type: ignore[arg-type]


def availability_schedule(
    availability: Availability, n: int, rounds: int, *, seed: int
) -> npt.NDArray[np.bool_]:
    """Available (True) or paused per [round, peer]; pure in ``seed``."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _SEED_STREAM])))
    limited = np.zeros(n, dtype=bool)
    limited[rng.permutation(n)[: round(availability.fraction * n)]] = True
    start = rng.integers(0, availability.period, size=n)
    t = np.arange(rounds)[:, None]
    inside = (t - start[None, :]) % availability.period < availability.window
    schedule: npt.NDArray[np.bool_] = inside | ~limited[None, :]
    return schedule
