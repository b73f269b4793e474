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

A presence is believed for the connection it came on. After the link to the broker drops and
comes back, every peer's presence must be said again on the new connection (a live peer's
retained one is re-sent on subscribe, or it says it once it has reconnected itself) within
``silence_timeout_s``; one that is not counts as ``offline``. Without that, a peer that died
while the broker was down would stay announced for ever: it left no will (its connection died
with the old broker) and a restarted broker without persistence retains nothing of it.

>>> live.reconnected(down_at=8.0, now=9.0); live.presence("c", online=True, now=10.0)
>>> sorted(live.announced(now=13.9)), sorted(live.announced(now=14.0))
(['c'], ['c'])
>>> live.presence("d", online=True, now=20.0); live.reconnected(down_at=21.0, now=22.0)
>>> sorted(live.announced(now=26.9)), sorted(live.announced(now=27.0)), live.alive("d", now=27.0)
(['c', 'd'], [], False)
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from peer.transport.base import ConnectionState
from protocol.types import PeerId

__all__ = ["Liveness", "track_link"]


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
        self._said: dict[PeerId, float] = {}
        """When each peer's presence was last received (or re-received)."""
        self._recheck: tuple[float, float] | None = None
        """After a reconnect: (when the link went down, when unconfirmed presence expires)."""

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
        self.confirm(peer, now=now)
        if online and paused:
            self._paused.add(peer)
        else:
            self._paused.discard(peer)
        if online:
            self.heard(peer, now=now)

    def confirm(self, peer: PeerId, *, now: float | None = None) -> None:
        """``peer``'s presence came (again) on the current connection, unchanged or not."""
        self._said[peer] = time.monotonic() if now is None else now

    def reconnected(self, *, down_at: float, now: float | None = None) -> None:
        """The link to the broker, down since ``down_at``, is up again: presence received
        before then must be confirmed within ``silence_timeout_s`` (see the module docstring)."""
        now = time.monotonic() if now is None else now
        self._recheck = (down_at, now + self.silence_timeout_s)

    def _expire(self, now: float) -> None:
        """Count as offline every presence a reconnect left unconfirmed past its deadline."""
        if self._recheck is None or now < self._recheck[1]:
            return
        down_at, self._recheck = self._recheck[0], None
        for peer, said in self._said.items():
            if said < down_at and self._online.get(peer, False):
                self._online[peer] = False
                self._paused.discard(peer)

    def alive(self, peer: PeerId, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._expire(now)
        if not self._online.get(peer, True) or peer in self._paused:
            return False
        last = self._last.get(peer)
        if last is None:
            return now < self._grace_until
        return now - last < self.silence_timeout_s

    def live_set(self, peers: Iterable[PeerId], *, now: float | None = None) -> frozenset[PeerId]:
        now = time.monotonic() if now is None else now
        return frozenset(p for p in peers if self.alive(p, now=now))

    def announced(self, *, now: float | None = None) -> frozenset[PeerId]:
        """Peers whose last presence message said ``online`` or ``paused`` (for
        membership-driven graphs: a paused peer keeps its place)."""
        self._expire(time.monotonic() if now is None else now)
        return frozenset(p for p, online in self._online.items() if online)


async def track_link(liveness: Liveness, link: ConnectionState) -> None:
    """Tell ``liveness`` of every reconnect of ``link`` (a task the runtime owns; runs until
    cancelled)."""
    while True:
        await link.wait_down()
        down_at = time.monotonic()
        await link.wait_up()
        liveness.reconnected(down_at=down_at)
