"""Counting and logging rejected messages, so that a flood of bad messages cannot flood the log.

Every rejection is counted per reason. A log line names the sender and the reason, at most once
per sender and reason per interval, and at most :data:`LINES_PER_REASON` lines per reason per
interval whatever the senders (a sender is a topic level: anyone can invent thousands). The next
line of a reason says how many of that reason were held back. Sender and detail come from the
network: each is cut to a bounded length and has its control characters escaped, so that one line
stays one bounded line.

>>> r = Rejections(interval_s=10.0)
>>> [r.record("b", "replayed_message", "seq 3 not newer", now=t) for t in (0.0, 1.0, 11.0)]
[True, False, True]
>>> dict(r.counts)
{'replayed_message': 3}
>>> clip("a\\nb" + "x" * 100, 8)
'a\\\\nbxxxx... (cut from 103 characters)'
"""

from __future__ import annotations

import logging
import time
from collections import Counter

__all__ = ["LINES_PER_REASON", "MAX_DETAIL_CHARS", "MAX_SENDER_CHARS", "Rejections", "clip"]

MAX_LOG_KEYS = 4096
"""(sender, reason) pairs remembered for rate limiting; senders come from topics, anyone's."""
LINES_PER_REASON = 5
"""Log lines per reason per interval, over all senders together."""
MAX_SENDER_CHARS = 64
MAX_DETAIL_CHARS = 240

log = logging.getLogger(__name__)


def clip(text: str, limit: int) -> str:
    """``text`` with control characters escaped, cut to about ``limit`` characters."""
    cleaned = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[: limit + 1])
    if len(text) <= limit and len(cleaned) <= limit:
        return cleaned
    return f"{cleaned[:limit]}... (cut from {len(text)} characters)"


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
        self._window: dict[str, tuple[float, int]] = {}
        """Per reason: when its current interval began, and the lines logged in it."""
        self._suppressed: Counter[str] = Counter()

    def record(self, sender: str, reason: str, detail: str, *, now: float | None = None) -> bool:
        """Count one rejection; return whether it was logged."""
        self.counts[reason] += 1
        sender = clip(sender, MAX_SENDER_CHARS)
        key = (sender, reason)
        now = time.monotonic() if now is None else now
        last = self._last_log.get(key)
        if (last is not None and now - last < self.interval_s) or not self._take_line(reason, now):
            self._suppressed[reason] += 1
            return False
        if len(self._last_log) >= MAX_LOG_KEYS and key not in self._last_log:
            self._last_log.clear()  # forget the oldest reports rather than grow without bound
        self._last_log[key] = now
        more = self._suppressed.pop(reason, 0)
        extra = f" (and {more} more {reason} held back since the last report)" if more else ""
        detail = clip(detail, MAX_DETAIL_CHARS)
        log.log(self.level, "%s from %s: %s: %s%s", self.what, sender, reason, detail, extra)
        return True

    def _take_line(self, reason: str, now: float) -> bool:
        """Whether the reason's budget of lines in this interval allows one more."""
        start, lines = self._window.get(reason, (now, 0))
        if now - start >= self.interval_s:
            start, lines = now, 0
        if lines >= LINES_PER_REASON:
            return False
        self._window[reason] = (start, lines + 1)
        return True
