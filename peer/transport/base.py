"""The Transport seam: what the runtime needs from a publish/subscribe link, and nothing more.

Two implementations: :class:`~peer.transport.mqtt.MqttTransport` (aiomqtt, a real broker) and
:class:`~peer.transport.memory.MemoryTransport` (in-process, for fast unit tests).

Semantics the runtime may rely on, whichever implementation:

* ``subscribe``/``unsubscribe`` change the *desired* subscription set. While disconnected they
  only record it; every (re)connection subscribes to the whole set again.
* ``publish`` while disconnected raises :class:`~peer.transport.errors.NotConnectedError` and
  sends nothing (no queueing: a stale model is worth less than the next round's).
* ``messages()`` yields whole payloads (chunks are reassembled) across reconnections, and ends
  when the transport closes. It has one consumer.
* Presence: on each connection the transport publishes a retained ``online`` on its presence
  topic, and the broker holds a retained ``offline`` will for an abrupt loss; a clean close
  publishes a retained ``offline`` first.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Protocol, Self, runtime_checkable

__all__ = [
    "OFFLINE",
    "ONLINE",
    "ConnectionState",
    "Message",
    "Presence",
    "Transport",
    "TransportStats",
]

ONLINE: Final = b"online"
OFFLINE: Final = b"offline"
"""The same bytes as :data:`protocol.presence.ONLINE` and ``OFFLINE``: the unsigned presence."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """One whole received payload; ``retained``: held by the broker and sent on subscribe."""

    topic: str
    payload: bytes
    retained: bool = False


@dataclass(frozen=True, kw_only=True)
class Presence:
    """Where a transport announces its peer: retained ``online``, with ``offline`` as the will."""

    topic: str
    online: bytes = ONLINE
    offline: bytes = OFFLINE
    sign: Callable[[bool, int], bytes] | None = None
    """Signed presence: makes the payload for (online, connection epoch); replaces the two above
    (:func:`protocol.presence.encode_presence`)."""

    def payloads(self, epoch: int) -> tuple[bytes, bytes]:
        """(online, offline) for one connection, whose ``epoch`` both carry when signed."""
        if self.sign is None:
            return self.online, self.offline
        return self.sign(True, epoch), self.sign(False, epoch)


@dataclass(kw_only=True)
class TransportStats:
    """Counters a transport keeps for telemetry; bytes count payloads as sent, chunks included."""

    bytes_out: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    messages_in: int = 0
    connects: int = 0
    dropped_incoming: int = 0
    """Whole messages dropped because the consumer fell behind (queue full)."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Incoming chunks refused, by ProtocolError reason (``bad_chunk``, ``oversized_message``),
    and partial chunk sets dropped (``expired_chunk_set``, ``evicted_chunk_set``)."""


class ConnectionState:
    """Observable link state: await ``wait_up()``/``wait_down()``, or read ``is_up``."""

    def __init__(self) -> None:
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self.last_error: str | None = None
        """Why the last connection attempt failed or the last link dropped; None after success."""

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self) -> None:
        await self._up.wait()

    async def wait_down(self) -> None:
        await self._down.wait()

    def set_up(self) -> None:
        self.last_error = None
        self._down.clear()
        self._up.set()

    def set_down(self, reason: str | None = None) -> None:
        if reason is not None:
            self.last_error = reason
        self._up.clear()
        self._down.set()


@runtime_checkable
class Transport(Protocol):
    """A publish/subscribe link used as ``async with transport: ...``."""

    @property
    def state(self) -> ConnectionState: ...

    @property
    def stats(self) -> TransportStats: ...

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None: ...

    async def subscribe(self, topics: Iterable[str]) -> None: ...

    async def unsubscribe(self, topics: Iterable[str]) -> None: ...

    def messages(self) -> AsyncIterator[Message]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
