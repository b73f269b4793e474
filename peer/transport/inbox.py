"""The queue between a transport's receive side and its one consumer, ``messages()``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from peer.transport.base import Message, TransportStats
from peer.transport.ratelimit import RateLimit

__all__ = ["Inbox"]

log = logging.getLogger(__name__)


class Inbox:
    """A bounded FIFO of whole messages that drops the newest when full and can be closed.

    Dropping beats blocking the receive side: a stalled consumer must not stall keepalives, and
    gossip tolerates a lost model (the next round brings a newer one).
    """

    def __init__(self, *, maxsize: int, stats: TransportStats) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize={maxsize}: expected at least 1")
        self._maxsize = maxsize
        self._stats = stats
        # Unbounded underneath so that the close sentinel always fits; put() enforces maxsize.
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._closed = False
        self._log_limit = RateLimit()  # a flood drops many messages; one line per interval

    def put(self, message: Message) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._maxsize:
            self._stats.dropped_incoming += 1
            more = self._log_limit.allow("full")
            if more is not None:
                log.warning(
                    "inbox full (%d messages): dropped one on %s%s",
                    self._maxsize,
                    message.topic[:120],
                    f" (and {more} more since the last report)" if more else "",
                )
            return
        self._stats.messages_in += 1
        self._queue.put_nowait(message)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            message = await self._queue.get()
            if message is None:
                # Leave the sentinel for any later iteration, which must end at once too.
                self._queue.put_nowait(None)
                return
            yield message
