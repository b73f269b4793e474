"""Counting and logging rejected messages: per reason, and at most one log line per sender and
reason per interval, so a flood of bad messages cannot flood the log.

>>> r = Rejections(interval_s=10.0)
>>> [r.record("b", "replayed_message", "seq 3 not newer", now=t) for t in (0.0, 1.0, 11.0)]
[True, False, True]
>>> dict(r.counts)
{'replayed_message': 3}
"""

from __future__ import annotations

import logging
import time
from collections import Counter

__all__ = ["Rejections"]

MAX_LOG_KEYS = 4096
"""(sender, reason) pairs remembered for rate limiting; senders come from topics, anyone's."""

log = logging.getLogger(__name__)


class Rejections:
    """Per-reason counters with rate-limited warnings naming the sender and the reason."""

    def __init__(
        self,
        *,
        interval_s: float = 10.0,
        what: str = "rejected a message",
        level: int = logging.WARNING,
    ) -> None:
        """``what`` and ``level``: the log line's wording and level (``ignored`` counters too)."""
        self.interval_s = interval_s
        self.what, self.level = what, level
        self.counts: Counter[str] = Counter()
        self._last_log: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()

    def record(self, sender: str, reason: str, detail: str, *, now: float | None = None) -> bool:
        """Count one rejection; return whether it was logged."""
        self.counts[reason] += 1
        key = (sender, reason)
        now = time.monotonic() if now is None else now
        last = self._last_log.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] += 1
            return False
        if len(self._last_log) >= MAX_LOG_KEYS and key not in self._last_log:
            self._last_log.clear()  # forget the oldest reports rather than grow without bound
            self._suppressed.clear()
        self._last_log[key] = now
        more = self._suppressed.pop(key, 0)
        extra = f" (and {more} more like it since the last report)" if more else ""
        log.log(self.level, "%s from %s: %s: %s%s", self.what, sender, reason, detail, extra)
        return True
