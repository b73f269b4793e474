"""Pausing a peer outside its availability window, and telling its neighbours so.

A paused peer stays connected and keeps its presence, but its retained presence says ``paused``
(:mod:`protocol.presence`): its neighbours stop waiting for its frames at once, and a
membership-driven graph keeps it in place. It trains and publishes nothing, checks again every
``check_every_s``, and on resuming says ``online`` again and rejoins at its neighbours' round
(:func:`catch_up_round`), so that no one waits while it replays the rounds it sat out.

>>> catch_up_round(4, [40, 38, None], total=None), catch_up_round(4, [], total=None)
(38, 4)
>>> catch_up_round(4, [40], total=20)
20
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from peer.availability.policy import Readings, pause_reason
from peer.config import AvailabilityConfig
from peer.transport import Presence, Transport, TransportError
from protocol.presence import encode_presence
from protocol.signing import SigningKey
from protocol.types import PeerId

__all__ = ["AvailabilityGate", "PresenceAnnouncer", "catch_up_round"]

log = logging.getLogger(__name__)


def catch_up_round(own: int, neighbours: Iterable[int | None], *, total: int | None) -> int:
    """The round a resumed peer continues at: the slowest live neighbour's newest (never back,
    never past ``total``)."""
    known = [r for r in neighbours if r is not None]
    target = max(own, min(known, default=own))
    return target if total is None else min(target, total)


class PresenceAnnouncer:
    """This peer's presence payloads (the transport's :class:`Presence`), paused or not."""

    def __init__(self, *, topic: str, swarm: str, peer: PeerId, key: SigningKey | None) -> None:
        self.topic, self.swarm, self.peer, self.key = topic, swarm, peer, key
        self.paused = False
        self.seq = 0
        self.epoch: int | None = None

    def payload(self, online: bool, epoch: int) -> bytes:
        """The payload for (online, connection epoch), in the current paused state."""
        self.epoch = epoch
        return encode_presence(
            swarm=self.swarm,
            sender=self.peer,
            online=online,
            epoch=epoch,
            key=self.key,
            paused=self.paused,
            seq=self.seq,
        )

    def presence(self) -> Presence:
        return Presence(topic=self.topic, sign=self.payload)

    async def announce(self, transport: Transport, *, paused: bool) -> None:
        """Publish ``paused`` or ``online`` (retained), newer than anything said before."""
        self.paused = paused
        self.seq += 1
        if self.epoch is None:
            return  # not connected yet: the connection announces the state
        data = self.payload(True, self.epoch)
        with contextlib.suppress(TransportError):  # a reconnection announces it anyway
            await transport.publish(self.topic, data, qos=1, retain=True)


class AvailabilityGate:
    """Holds the round loop while the policy says no; see the module docstring."""

    def __init__(
        self,
        config: AvailabilityConfig,
        readings: Readings,
        *,
        announcer: PresenceAnnouncer,
    ) -> None:
        self.config, self.readings, self.announcer = config, readings, announcer
        self.paused = False
        self.pauses = 0
        """Times this peer paused since it started."""

    def start_paused(self) -> bool:
        """Before connecting: make the first presence ``paused`` if the policy says so."""
        self.announcer.paused = self.reason() is not None
        return self.announcer.paused

    def reason(self) -> str | None:
        """Why not to train now (None: train)."""
        return pause_reason(self.config, self.readings.read()) if self.config.active else None

    async def until_available(
        self,
        transport: Transport,
        stop: asyncio.Event,
        *,
        idle: Callable[[], None] | None = None,
    ) -> bool:
        """Return at once when the policy allows training, else pause until it does or ``stop``
        is set, calling ``idle`` at every check; return whether this call paused."""
        reason = self.reason()
        if reason is None:
            if self.announcer.paused:  # it started paused: say online before the first frame
                await self.announcer.announce(transport, paused=False)
            return False
        log.info("%s pauses: %s", self.announcer.peer, reason)
        self.paused, self.pauses = True, self.pauses + 1
        await self.announcer.announce(transport, paused=True)
        connects = transport.stats.connects
        while reason is not None and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.check_every_s):
                    await stop.wait()
            if transport.stats.connects != connects:  # say it again on a new link
                connects = transport.stats.connects
                await self.announcer.announce(transport, paused=True)
            if idle is not None:
                idle()
            reason = self.reason()
        self.paused = False
        if not stop.is_set():
            log.info("%s resumes", self.announcer.peer)
            await self.announcer.announce(transport, paused=False)
        return True
