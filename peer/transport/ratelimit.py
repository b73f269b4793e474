"""A logging filter that lets at most one record per message template through per interval.

A flood of bad or surplus messages must not flood the log (and then fill the disk): the first
record of a kind passes, later ones within ``interval_s`` are counted, and the next one to pass
says how many were suppressed.

>>> import logging
>>> f = RateLimit(interval_s=10.0, clock=iter([0.0, 1.0, 2.0, 11.0]).__next__)
>>> rec = lambda: logging.LogRecord("x", logging.WARNING, "", 0, "queue full", None, None)
>>> [f.filter(rec()) for _ in range(4)]
[True, False, False, True]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimit"]

_MAX_KINDS = 256


class RateLimit(logging.Filter):
    """Passes one record per (logger, template) per ``interval_s``; counts the rest."""

    def __init__(
        self, *, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[object, float] = {}
        self._suppressed: dict[object, int] = {}

    def allow(self, key: object) -> int | None:
        """None if a line of kind ``key`` was let through less than ``interval_s`` ago; else
        how many were held back since the last one (and this one may be logged)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if len(self._last) >= _MAX_KINDS and key not in self._last:
            self._last.clear()  # keys are code's templates, not the network's: this stays small
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def filter(self, record: logging.LogRecord) -> bool:
        more = self.allow((record.name, str(record.msg)))
        if more is None:
            return False
        if more:
            record.msg = f"{record.msg} (and {more} more like it since the last report)"
        return True
