"""A small progress bar on stderr: silent when the stream is not a terminal or when asked."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30
_MIN_INTERVAL_S = 0.1


class Progress:
    """``with Progress(total) as bar: bar.update(done, "acc 0.71")``.

    >>> import io
    >>> stream = io.StringIO()
    >>> with Progress(4, stream=stream, enabled=True) as bar:
    ...     bar.update(4, "done")
    >>> "4/4" in stream.getvalue()
    True
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = max(total, 1)
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, done: int, text: str = "") -> None:
        """Redraw, at most every 0.1 s except for the final step."""
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self._last < _MIN_INTERVAL_S:
            return
        self._last = now
        filled = _WIDTH * min(done, self.total) // self.total
        bar = "#" * filled + "-" * (_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} {text}\x1b[K")
        self.stream.flush()
        self._shown = True
