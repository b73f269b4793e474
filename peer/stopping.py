"""Stopping ``rumor peer`` on SIGTERM or SIGINT, from its first line on.

:meth:`StopSignals.install` replaces the default handlers before anything slow happens (the torch
import, the data load, the broker connect); until an event loop runs, a signal is only recorded.
:meth:`StopSignals.event` hands the running loop one event that every start-up wait races
(:func:`until_stopped`) and the round loop checks: a peer stopped before its first round exits 0
like any other, having said ``offline`` if it was connected.

A process can only handle a signal once its interpreter runs: a launcher that may stop a peer the
moment it spawned it starts it with SIGTERM and SIGINT blocked (:data:`STOP_SIGNALS`, see
:func:`peer.up.procs.launch`); :meth:`StopSignals.install` unblocks them once its handlers are in
place, so a signal that came in between is delivered then, not lost and not fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable
from types import FrameType
from typing import Self, TypeVar

__all__ = ["STOP_SIGNALS", "StopSignals", "until_stopped"]

log = logging.getLogger("rumor.peer")

T = TypeVar("T")

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class StopSignals:
    """The first stop signal received, and the event a running loop waits on."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._event: asyncio.Event | None = None
        self._previous: dict[signal.Signals, object] = {}

    @classmethod
    def install(cls) -> Self:
        """Handle SIGTERM and SIGINT from now on (main thread only); unblock them."""
        stop = cls()
        for sig in STOP_SIGNALS:
            stop._previous[sig] = signal.signal(sig, stop._record)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return stop

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)

    def event(self) -> asyncio.Event:
        """The running loop's stop event, set already if a signal came before the loop ran."""
        if self._event is None:
            self._event = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_signal, sig)
            if self.received is not None:
                self._on_signal(self.received)
        return self._event

    def _on_signal(self, sig: signal.Signals) -> None:
        assert self._event is not None
        if not self._event.is_set():
            log.info("%s received: finishing the current round (if any), then stopping", sig.name)
        self.received = self.received or sig
        self._event.set()


async def until_stopped(stop: asyncio.Event, wait: Awaitable[T]) -> T | None:
    """The result of ``wait``, or None (``wait`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(wait)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
