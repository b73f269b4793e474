"""An in-process broker and transport with the MQTT semantics rumor relies on, for fast tests.

Kept: topic filters with ``+`` and ``#``; retained messages (an empty retained payload clears
one) delivered on subscribe with ``retained=True``; the will published when a client vanishes
without a clean close; a client id taking over an older session; chunking and reassembly exactly
as :class:`~peer.transport.mqtt.MqttTransport` does them. Ignored: QoS (every message arrives
once, in order) and packet size limits.

A broker outage is ``broker.go_down()`` then ``broker.go_up()``: transports see their link drop,
then reconnect, re-subscribe and announce presence again, as the MQTT one does.

>>> import asyncio
>>> async def demo() -> list[bytes]:
...     broker = MemoryBroker()
...     async with MemoryTransport(broker, client_id="a") as a, \\
...                MemoryTransport(broker, client_id="b") as b:
...         await a.state.wait_up(); await b.state.wait_up()
...         await b.subscribe(["rumor/lab/key/+"])
...         await a.publish("rumor/lab/key/a", b"model", retain=True)
...         async for message in b.messages():
...             return [message.payload]
...     return []
>>> asyncio.run(demo())
[b'model']
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from peer.transport.base import Presence
from peer.transport.core import TransportCore
from peer.transport.errors import NotConnectedError, TransportError
from peer.transport.filters import check_filter, check_topic, matches

__all__ = ["MemoryBroker", "MemoryTransport"]

log = logging.getLogger(__name__)

Deliver = Callable[[str, bytes, bool], None]


@dataclass(eq=False, kw_only=True)
class _Session:
    client_id: str
    deliver: Deliver
    will: tuple[str, bytes] | None
    filters: set[str] = field(default_factory=set)
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBroker:
    """Routes bytes between :class:`MemoryTransport` instances on one event loop."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._retained: dict[str, bytes] = {}
        self._up = asyncio.Event()
        self._up.set()

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    @property
    def retained(self) -> dict[str, bytes]:
        """A copy of the retained messages, by topic."""
        return dict(self._retained)

    @property
    def clients(self) -> list[str]:
        return sorted(self._sessions)

    async def wait_up(self) -> None:
        await self._up.wait()

    def go_down(self) -> None:
        """Drop every client at once, as a crashed broker would; no wills are sent."""
        self._up.clear()
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.lost.set()

    def go_up(self) -> None:
        """Accept connections again; retained messages survived, as with persistence."""
        self._up.set()

    def connect(
        self, client_id: str, *, deliver: Deliver, will: tuple[str, bytes] | None
    ) -> _Session:
        if not self.is_up:
            raise TransportError(f"memory broker is down; client {client_id!r} cannot connect")
        old = self._sessions.pop(client_id, None)
        if old is not None:
            log.info("client id %r taken over; dropping the older session", client_id)
            self._drop(old, clean=False)
        session = _Session(client_id=client_id, deliver=deliver, will=will)
        self._sessions[client_id] = session
        return session

    def disconnect(self, session: _Session, *, clean: bool) -> None:
        """End ``session``; an unclean end publishes its will (retained)."""
        if self._sessions.get(session.client_id) is session:
            del self._sessions[session.client_id]
            self._drop(session, clean=clean)

    def _drop(self, session: _Session, *, clean: bool) -> None:
        session.lost.set()
        if not clean and session.will is not None:
            self.publish(*session.will, retain=True)

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        check_topic(topic)
        if retain:
            if payload:
                self._retained[topic] = payload
            else:
                self._retained.pop(topic, None)
        for session in list(self._sessions.values()):
            if any(matches(f, topic) for f in session.filters):
                session.deliver(topic, payload, False)

    def subscribe(self, session: _Session, filters: Iterable[str]) -> None:
        for pattern in filters:
            session.filters.add(check_filter(pattern))
            for topic, payload in list(self._retained.items()):
                if matches(pattern, topic):
                    session.deliver(topic, payload, True)

    def unsubscribe(self, session: _Session, filters: Iterable[str]) -> None:
        session.filters.difference_update(filters)


class MemoryTransport(TransportCore):
    """A :class:`~peer.transport.base.Transport` over a :class:`MemoryBroker`."""

    def __init__(
        self,
        broker: MemoryBroker,
        *,
        client_id: str,
        presence: Presence | None = None,
        max_payload: int | None = None,
        max_message_bytes: int | None = None,
        max_queued: int = 256,
    ) -> None:
        super().__init__(
            task_name=f"memory-transport-{client_id}",
            presence=presence,
            max_payload=max_payload,
            max_message_bytes=max_message_bytes,
            max_queued=max_queued,
        )
        self._broker = broker
        self._client_id = client_id
        self._session: _Session | None = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            if self._presence is not None and self._announce is not None:
                self._broker.publish(self._presence.topic, self._announce[1], retain=True)
            self._broker.disconnect(session, clean=True)
        await self._close()

    async def abort(self) -> None:
        """Vanish without a clean close, as a killed process does: the broker sends the will."""
        session, self._session = self._session, None
        if session is not None:
            self._broker.disconnect(session, clean=False)
        await self._close()

    async def _run(self) -> None:
        while True:
            await self._broker.wait_up()
            announce = self._new_announcement()
            will = (
                None
                if self._presence is None or announce is None
                else (self._presence.topic, announce[1])
            )
            session = self._broker.connect(self._client_id, deliver=self._deliver, will=will)
            self._session = session
            self._stats.connects += 1
            self._broker.subscribe(session, self._chunks.expand_filters(self._filters))
            if self._presence is not None and announce is not None:
                self._broker.publish(self._presence.topic, announce[0], retain=True)
            self._state.set_up()
            await session.lost.wait()
            self._session = None
            self._state.set_down("connection lost")

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        check_topic(topic)
        session = self._session
        if session is None or not self._state.is_up:
            raise NotConnectedError(
                f"not connected to the memory broker; dropped a publish on {topic}"
            )
        for part_topic, part in self._chunks.outgoing(topic, payload):
            self._broker.publish(part_topic, part, retain=retain)
            self._stats.bytes_out += len(part)
        self._stats.messages_out += 1
        await asyncio.sleep(0)  # a network publish yields; so does this one

    async def subscribe(self, topics: Iterable[str]) -> None:
        new = {check_filter(t) for t in topics} - self._filters
        self._filters |= new
        if self._session is not None:
            self._broker.subscribe(self._session, self._chunks.expand_filters(new))
        await asyncio.sleep(0)

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        gone = self._filters & set(topics)
        self._filters -= gone
        if self._session is not None:
            self._broker.unsubscribe(self._session, self._chunks.expand_filters(gone))
        await asyncio.sleep(0)
