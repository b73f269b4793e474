"""Publishing a chunked message with several chunks in flight at once.

A QoS 1 publish is done when the broker acknowledges it. Awaiting each chunk's acknowledgement
before sending the next costs one round trip to the broker per chunk: 33 of them for a 4 MB
frame in 124 KiB chunks, most of a round's exchange on a fast link. :func:`send_window` keeps up
to ``window`` chunks unacknowledged instead, in order, so the link stays busy; each chunk keeps
its own timeout (it waits behind at most ``window - 1`` others), and the first failure cancels
the chunks still in flight and is raised.

>>> sent = []
>>> async def send(topic: str, payload: bytes) -> None:
...     sent.append(topic)
>>> asyncio.run(send_window(send, [("a/chunk/0", b"x"), ("a/chunk/1", b"y")], window=4))
>>> sent
['a/chunk/0', 'a/chunk/1']
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["WINDOW", "send_window"]

WINDOW = 16
"""Chunks in flight per message: below paho's default of 20 unacknowledged QoS 1 messages (and
Mosquitto's), so none wait in the client's own queue, where their timeout would still run."""


async def send_window(
    send: Callable[[str, bytes], Awaitable[None]],
    parts: Sequence[tuple[str, bytes]],
    *,
    window: int = WINDOW,
) -> None:
    """``send`` every (topic, payload) of ``parts`` in order, at most ``window`` unfinished."""
    if window < 1:
        raise ValueError(f"window={window}: expected at least 1")
    if len(parts) == 1:  # the common small message: no task
        await send(*parts[0])
        return
    flying: deque[asyncio.Task[None]] = deque()
    try:
        for topic, payload in parts:
            if len(flying) >= window:
                await flying.popleft()
            flying.append(asyncio.ensure_future(send(topic, payload)))
        while flying:
            await flying.popleft()
    finally:
        for task in flying:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the first failure is what is raised
            task.cancel()
