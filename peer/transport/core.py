"""What both transports share: connection state, counters, the chunk layer, the inbox, and one
background connection task that a TaskGroup owns for the lifetime of the ``async with``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Self

from peer.transport.base import ConnectionState, Message, Presence, TransportStats
from peer.transport.chunks import ChunkLayer
from peer.transport.inbox import Inbox

__all__ = ["TransportCore"]


class TransportCore:
    """Base of :class:`~peer.transport.memory.MemoryTransport` and
    :class:`~peer.transport.mqtt.MqttTransport`; subclasses implement :meth:`_run`, the
    connect-serve-reconnect loop."""

    def __init__(
        self,
        *,
        task_name: str,
        presence: Presence | None,
        max_payload: int | None,
        max_message_bytes: int | None,
        max_queued: int,
    ) -> None:
        self._task_name = task_name
        self._presence = presence
        self._state = ConnectionState()
        self._stats = TransportStats()
        self._chunks = ChunkLayer(
            max_payload=max_payload, max_message_bytes=max_message_bytes, stats=self._stats
        )
        self._inbox = Inbox(maxsize=max_queued, stats=self._stats)
        self._filters: set[str] = set()
        """The subscriptions wanted; (re)applied on every connection."""
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self._epoch = 0
        self._announce: tuple[bytes, bytes] | None = None
        """This connection's (online, offline) presence payloads."""

    def _new_announcement(self) -> tuple[bytes, bytes] | None:
        """The presence payloads of a new connection: a fresh, increasing epoch each time."""
        if self._presence is None:
            return None
        self._epoch = max(self._epoch + 1, time.time_ns() // 1000)
        self._announce = self._presence.payloads(self._epoch)
        return self._announce

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def stats(self) -> TransportStats:
        return self._stats

    def messages(self) -> AsyncIterator[Message]:
        return aiter(self._inbox)

    def _deliver(self, topic: str, payload: bytes, retained: bool) -> None:
        """One packet from the broker: reassembled through the chunk layer into the inbox."""
        message = self._chunks.incoming(topic, payload, retained=retained)
        if message is not None:
            self._inbox.put(message)

    async def __aenter__(self) -> Self:
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._task = group.create_task(self._run(), name=self._task_name)
        return self

    async def _close(self) -> None:
        """Stop the connection task and end the message stream."""
        if self._task is not None:
            self._task.cancel()
        await self._stack.aclose()
        self._inbox.close()
        self._state.set_down("closed")

    async def _run(self) -> None:
        raise NotImplementedError
