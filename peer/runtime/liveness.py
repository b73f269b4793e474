"""Which neighbours are alive: retained presence (``online``/``offline``, the will) plus silence.

A neighbour is alive once it has been heard from (its retained ``online`` presence, or an
accepted frame) and until its last presence message says ``offline`` or nothing has been heard
from it for ``silence_timeout_s``.

A neighbour never heard from is given ``startup_grace_s`` from the moment this peer started:
peers of one swarm rarely start in the same second (process start, the torch import, the data
load), and a sync swarm whose first peer ran its first rounds alone would start out of step. Once
the grace has run out, a neighbour never heard from is not alive, so a peer that never started
costs at most the grace, not ``round_timeout_s`` every round.

>>> live = Liveness(silence_timeout_s=5.0, startup_grace_s=2.0, now=0.0)
>>> live.alive("b", now=1.0), live.alive("b", now=2.0)
(True, False)
>>> live.heard("b", now=1.0); live.alive("b", now=5.0), live.alive("b", now=6.0)
(True, False)
>>> live.heard("b", now=6.0); live.alive("b", now=6.0)
True
>>> live.presence("b", online=False, now=7.0); live.alive("b", now=7.0)
False
>>> live.presence("c", online=True, paused=True, now=7.0); live.alive("c"), sorted(live.announced())
(False, ['c'])
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from protocol.types import PeerId

__all__ = ["Liveness"]


class Liveness:
    """Presence and last-heard time per peer; pure bookkeeping (time is passed in)."""

    def __init__(
        self, *, silence_timeout_s: float, startup_grace_s: float = 0.0, now: float | None = None
    ) -> None:
        self.silence_timeout_s = silence_timeout_s
        self.startup_grace_s = startup_grace_s
        self.start_grace(now=now)
        self._last: dict[PeerId, float] = {}
        self._online: dict[PeerId, bool] = {}
        self._paused: set[PeerId] = set()

    def start_grace(self, *, now: float | None = None) -> None:
        """(Re)start the grace for neighbours never heard from: when this peer's rounds begin."""
        start = time.monotonic() if now is None else now
        self._grace_until = start + self.startup_grace_s

    def heard(self, peer: PeerId, *, now: float | None = None) -> None:
        """Something arrived from ``peer``."""
        self._last[peer] = time.monotonic() if now is None else now

    def presence(
        self, peer: PeerId, *, online: bool, paused: bool = False, now: float | None = None
    ) -> None:
        """A presence message from ``peer``; ``online`` also counts as hearing from it. A
        ``paused`` peer stays announced (membership) but is not alive: no one waits for it."""
        self._online[peer] = online
        if online and paused:
            self._paused.add(peer)
        else:
            self._paused.discard(peer)
        if online:
            self.heard(peer, now=now)

    def alive(self, peer: PeerId, *, now: float | None = None) -> bool:
        if not self._online.get(peer, True) or peer in self._paused:
            return False
        now = time.monotonic() if now is None else now
        last = self._last.get(peer)
        if last is None:
            return now < self._grace_until
        return now - last < self.silence_timeout_s

    def live_set(self, peers: Iterable[PeerId], *, now: float | None = None) -> frozenset[PeerId]:
        now = time.monotonic() if now is None else now
        return frozenset(p for p in peers if self.alive(p, now=now))

    def announced(self) -> frozenset[PeerId]:
        """Peers whose last presence message said ``online`` or ``paused`` (for
        membership-driven graphs: a paused peer keeps its place)."""
        return frozenset(p for p, online in self._online.items() if online)
