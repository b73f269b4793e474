"""The availability policy: may this device train now? A pure decision over one reading.

Readings come through the :class:`Readings` seam: :class:`SystemReadings` asks ``psutil`` and the
local clock; tests pass their own.

>>> config = AvailabilityConfig(charging_only=True, hours="22:00-06:00")
>>> night = Reading(minute=23 * 60, charging=True, battery=80.0, cpu_busy=5.0)
>>> pause_reason(config, night) is None
True
>>> pause_reason(config, Reading(minute=12 * 60, charging=True, battery=80.0, cpu_busy=5.0))
'outside hours 22:00-06:00 (now 12:00)'
>>> pause_reason(config, Reading(minute=60, charging=False, battery=80.0, cpu_busy=5.0))
'on battery (charging_only)'
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Protocol

from peer.config import AvailabilityConfig

__all__ = ["Reading", "Readings", "SystemReadings", "in_window", "pause_reason"]


@dataclass(frozen=True, kw_only=True)
class Reading:
    """What the device says about itself at one moment."""

    minute: int
    """Minutes after local midnight, 0 to 1439."""
    charging: bool | None
    """On mains power; None: no battery (always powered)."""
    battery: float | None
    """Battery charge in percent; None: no battery."""
    cpu_busy: float
    """Percent of the whole CPU used by other processes than this one."""


class Readings(Protocol):
    """Where readings come from."""

    def read(self) -> Reading: ...


def in_window(minute: int, window: tuple[int, int]) -> bool:
    """Whether ``minute`` (after midnight) lies in [start, end), wrapping midnight.

    >>> in_window(23 * 60, (22 * 60, 6 * 60)), in_window(6 * 60, (22 * 60, 6 * 60))
    (True, False)
    >>> in_window(10 * 60, (9 * 60, 17 * 60)), in_window(8 * 60, (9 * 60, 17 * 60))
    (True, False)
    """
    start, end = window
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def pause_reason(config: AvailabilityConfig, reading: Reading) -> str | None:
    """Why the device must not train now, or None when it may."""
    window = config.window
    if window is not None and not in_window(reading.minute, window):
        return f"outside hours {config.hours} (now {_clock(reading.minute)})"
    if config.charging_only and reading.charging is False:
        return "on battery (charging_only)"
    low = config.battery_min
    battery = reading.battery
    if low is not None and battery is not None and not reading.charging and battery < low:
        return f"battery {reading.battery:.0f} % < battery_min {low:g} %"
    busy = config.cpu_busy_max
    if busy is not None and reading.cpu_busy > busy:
        return f"CPU {reading.cpu_busy:.0f} % busy with other work > cpu_busy_max {busy:g} %"
    return None


class SystemReadings:
    """Readings of this machine: the local clock, and psutil's battery and CPU figures. The CPU
    figures are averages since the previous reading (the first one reads 0)."""

    def __init__(self) -> None:
        import psutil  # here: only peers with an [availability] policy need it

        self._psutil = psutil
        self._me = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        psutil.cpu_percent(interval=None)
        self._me.cpu_percent(interval=None)

    def read(self) -> Reading:
        now = datetime.datetime.now()
        battery = self._psutil.sensors_battery()
        plugged = None if battery is None else battery.power_plugged
        total = self._psutil.cpu_percent(interval=None)
        mine = self._me.cpu_percent(interval=None) / self._cores
        return Reading(
            minute=now.hour * 60 + now.minute,
            charging=None if battery is None or plugged is None else bool(plugged),
            battery=None if battery is None else float(battery.percent),
            cpu_busy=max(0.0, total - mine),
        )
