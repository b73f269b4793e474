"""Chunks of one message are published with several in flight, in order, failing as one."""

from __future__ import annotations

import asyncio
import random

import pytest

from peer.broker import Broker
from peer.transport.pipeline import WINDOW, send_window
from tests.peer.test_transport_mqtt import client, take


class Spy:
    """A send that records order and concurrency; ``fail``: that topic raises, and every other
    one then waits for an acknowledgement that never comes."""

    def __init__(self, *, fail: str | None = None) -> None:
        self.started: list[str] = []
        self.flying = 0
        self.peak = 0
        self.cancelled = 0
        self.fail = fail

    async def send(self, topic: str, payload: bytes) -> None:
        self.started.append(topic)
        self.flying += 1
        self.peak = max(self.peak, self.flying)
        try:
            await asyncio.sleep(0)  # the others get to start meanwhile
            if topic == self.fail:
                raise OSError(f"no ack for {topic}")
            if self.fail is not None:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.flying -= 1


def _parts(n: int) -> list[tuple[str, bytes]]:
    return [(f"t/chunk/{k}", bytes([k])) for k in range(n)]


async def test_a_window_of_chunks_is_in_flight_in_order() -> None:
    spy = Spy()
    await send_window(spy.send, _parts(10), window=4)
    assert spy.started == [f"t/chunk/{k}" for k in range(10)]
    assert spy.peak == 4
    assert spy.flying == 0


async def test_the_first_failure_cancels_the_rest_and_is_raised() -> None:
    spy = Spy(fail="t/chunk/0")
    with pytest.raises(OSError, match="no ack for t/chunk/0"):
        await send_window(spy.send, _parts(10), window=4)
    assert spy.started == ["t/chunk/0", "t/chunk/1", "t/chunk/2", "t/chunk/3"]
    await asyncio.sleep(0)  # the cancellations land
    assert spy.cancelled == 3
    assert spy.flying == 0


async def test_a_window_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="window=0"):
        await send_window(Spy().send, _parts(2), window=0)


@pytest.mark.broker
async def test_an_mqtt_publish_keeps_several_chunks_unacknowledged(broker: Broker) -> None:
    payload = random.Random(5).randbytes(200_000)
    async with client(broker, "a", max_payload=4096) as a, client(broker, "b") as b:
        await b.subscribe(["rumor/lab/key/+"])
        paho_client = a._client
        assert paho_client is not None
        publish, spy = paho_client.publish, Spy()

        async def counted(topic: str, payload: bytes, **kw: object) -> None:
            spy.flying += 1
            spy.peak = max(spy.peak, spy.flying)
            try:
                await publish(topic, payload, **kw)  # type: ignore[arg-type]
            finally:
                spy.flying -= 1

        paho_client.publish = counted  # type: ignore[method-assign,assignment]
        await a.publish("rumor/lab/key/a", payload, qos=1, retain=True)
        [message] = await take(b, 1)
    assert message.payload == payload
    # 49 chunks: one round trip to the broker per window, not per chunk.
    assert spy.peak == WINDOW
