"""Which neighbours are alive: retained presence (``online``/``offline``, the will) plus silence.

A neighbour is alive once it has been heard from (its retained ``online`` presence, or an
accepted frame) and until its last presence message says ``offline`` or nothing has been heard
from it for ``silence_timeout_s``. A neighbour never heard from is not alive: a sync round does
not wait for a peer that never started (a swarm starting together still meets, since each peer's
retained ``online`` reaches its neighbours when they subscribe).

>>> live = Liveness(silence_timeout_s=5.0)
>>> live.alive("b", now=0.0)
False
>>> live.heard("b", now=1.0); live.alive("b", now=5.0), live.alive("b", now=6.0)
(True, False)
>>> live.heard("b", now=6.0); live.alive("b", now=6.0)
True
>>> live.presence("b", online=False, now=7.0); live.alive("b", now=7.0)
False
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from protocol.types import PeerId

__all__ = ["Liveness"]


class Liveness:
    """Presence and last-heard time per peer; pure bookkeeping (time is passed in)."""

    def __init__(self, *, silence_timeout_s: float) -> None:
        self.silence_timeout_s = silence_timeout_s
        self._last: dict[PeerId, float] = {}
        self._online: dict[PeerId, bool] = {}

    def heard(self, peer: PeerId, *, now: float | None = None) -> None:
        """Something arrived from ``peer``."""
        self._last[peer] = time.monotonic() if now is None else now

    def presence(self, peer: PeerId, *, online: bool, now: float | None = None) -> None:
        """A presence message from ``peer``; ``online`` also counts as hearing from it."""
        self._online[peer] = online
        if online:
            self.heard(peer, now=now)

    def alive(self, peer: PeerId, *, now: float | None = None) -> bool:
        last = self._last.get(peer)
        if last is None or not self._online.get(peer, True):
            return False
        now = time.monotonic() if now is None else now
        return now - last < self.silence_timeout_s

    def live_set(self, peers: Iterable[PeerId], *, now: float | None = None) -> frozenset[PeerId]:
        now = time.monotonic() if now is None else now
        return frozenset(p for p in peers if self.alive(p, now=now))

    def announced(self) -> frozenset[PeerId]:
        """Peers whose last presence message said ``online`` (for membership-driven graphs)."""
        return frozenset(p for p, online in self._online.items() if online)
