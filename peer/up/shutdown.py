"""Signals for the whole life of ``rumor up``: nothing it started may outlive it.

The first SIGINT or SIGTERM asks for a stop: every peer gets SIGTERM (it finishes its round,
checkpoints and says ``offline``), then the broker stops. A signal that comes while stopping (a
second Ctrl-C, a second SIGTERM during the grace period) escalates: what is left is SIGKILLed at
once, and still reaped. The handlers are Python-level ones, in place from before the broker is
launched until everything is reaped, so no signal can end the launcher with a child left behind.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

__all__ = ["Shutdown"]

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """Whether a stop was asked for; kills registered with :meth:`on_escalation` on a later one."""

    def __init__(self) -> None:
        self.requested = False
        """A signal asked for a stop."""
        self.stopping = False
        """The launcher is stopping what it started (asked or not)."""
        self.escalated = False
        self.wake: Callable[[], None] | None = None
        """Called on the first signal (from the handler): wakes a waiting event loop."""
        self._kills: list[Callable[[], None]] = []
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def on_escalation(self, kill: Callable[[], None]) -> None:
        """``kill`` must only send signals (it runs in a signal handler), never wait."""
        self._kills.append(kill)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested or self.stopping:
            self.escalated = True
            for kill in self._kills:
                kill()
        self.requested = True
        if self.wake is not None:
            self.wake()
