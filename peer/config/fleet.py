"""``[availability]`` and ``[metrics]``: when a device may train, and where it is scraped.

>>> AvailabilityConfig(hours="22:00-06:00").window
(1320, 360)
>>> AvailabilityConfig(battery_min=120.0)
Traceback (most recent call last):
...
protocol.errors.ConfigError: availability.battery_min = 120.0: expected a percentage, 0 to 100
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from protocol.errors import ConfigError

__all__ = ["AvailabilityConfig", "MetricsConfig", "parse_hours"]

_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_DAY = 24 * 60


def parse_hours(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` as (start, end) minutes after local midnight; it may wrap midnight.

    >>> parse_hours("09:30-17:00"), parse_hours("22:00-24:00")  # "00:00-24:00": all day
    ((570, 1020), (1320, 1440))
    """
    match = _HOURS.match(text.strip())
    if match is None:
        raise ConfigError(f"expected 'HH:MM-HH:MM' (local time, e.g. '22:00-06:00'), got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > _DAY:
        raise ConfigError(f"{text!r}: hours 00:00 to 23:59 (24:00 only as an end)")
    if start == end:
        raise ConfigError(f"{text!r}: an empty window; leave hours out to train at any time")
    return start, end


def _error(key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"{key} = {value!r}: expected {expected}")


@dataclass(frozen=True, kw_only=True)
class AvailabilityConfig:
    """When this device may train; every condition set must hold. Nothing set: always."""

    SECTION: ClassVar[str] = "availability"
    charging_only: bool = False
    """Train only on mains power (a device without a battery always is)."""
    battery_min: float | None = None
    """Train only with the battery at or above this percentage (ignored without a battery)."""
    cpu_busy_max: float | None = None
    """Train only while other processes use at most this percentage of the CPU."""
    hours: str | None = None
    """Train only inside this local-time window, ``"HH:MM-HH:MM"``; it may wrap midnight."""
    check_every_s: float = 30.0
    """How often a paused peer checks again."""

    def __post_init__(self) -> None:
        for name in ("battery_min", "cpu_busy_max"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise _error(f"availability.{name}", value, "a percentage, 0 to 100")
        if self.hours is not None:
            try:
                parse_hours(self.hours)
            except ConfigError as exc:
                raise ConfigError(f"availability.hours: {exc}") from exc
        if not 0 < self.check_every_s <= 3600:
            raise _error("availability.check_every_s", self.check_every_s, "0 < seconds <= 3600")

    @property
    def active(self) -> bool:
        """Whether any condition is set (otherwise the peer never pauses)."""
        conditions = (self.battery_min, self.cpu_busy_max, self.hours)
        return self.charging_only or any(c is not None for c in conditions)

    @property
    def window(self) -> tuple[int, int] | None:
        return None if self.hours is None else parse_hours(self.hours)


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """A Prometheus endpoint on ``address:port`` (``/metrics``); no port: none."""

    SECTION: ClassVar[str] = "metrics"
    port: int | None = None
    address: str = "127.0.0.1"
    """The address to listen on; ``0.0.0.0`` to be scraped from another machine."""

    def __post_init__(self) -> None:
        if self.port is not None and not 1 <= self.port <= 65535:
            raise _error("metrics.port", self.port, "1 to 65535")
        if not self.address.strip():
            raise _error("metrics.address", self.address, "an address to listen on")
