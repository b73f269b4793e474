"""MemoryTransport keeps the MQTT semantics the runtime relies on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from peer.transport import (
    MemoryBroker,
    MemoryTransport,
    Message,
    NotConnectedError,
    Presence,
    Transport,
)

TIMEOUT_S = 2.0


async def take(transport: MemoryTransport, n: int) -> list[Message]:
    out: list[Message] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for message in transport.messages():
            out.append(message)
            if len(out) == n:
                break
    return out


async def nothing_pending(transport: MemoryTransport) -> bool:
    try:
        async with asyncio.timeout(0.05):
            await anext(aiter(transport.messages()))
    except TimeoutError:
        return True
    return False


@pytest.fixture
def memory() -> MemoryBroker:
    return MemoryBroker()


async def connected(broker: MemoryBroker, client_id: str, **kw: object) -> MemoryTransport:
    transport = MemoryTransport(broker, client_id=client_id, **kw)  # type: ignore[arg-type]
    await transport.__aenter__()
    await transport.state.wait_up()
    return transport


@pytest.fixture
async def pair(memory: MemoryBroker) -> AsyncIterator[tuple[MemoryTransport, MemoryTransport]]:
    a = await connected(memory, "a")
    b = await connected(memory, "b")
    yield a, b
    await b.__aexit__(None, None, None)
    await a.__aexit__(None, None, None)


def test_memory_transport_satisfies_the_protocol(memory: MemoryBroker) -> None:
    assert isinstance(MemoryTransport(memory, client_id="x"), Transport)


async def test_publish_reaches_matching_subscribers_only(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    await b.subscribe(["rumor/lab/delta/+"])
    await a.publish("rumor/lab/key/a", b"not for b")
    await a.publish("rumor/lab/delta/a", b"d1")
    await a.publish("rumor/other/delta/a", b"not for b either")
    await a.publish("rumor/lab/delta/a", b"d2")
    got = await take(b, 2)
    assert [(m.topic, m.payload, m.retained) for m in got] == [
        ("rumor/lab/delta/a", b"d1", False),
        ("rumor/lab/delta/a", b"d2", False),
    ]
    assert await nothing_pending(b)
    assert (a.stats.messages_out, b.stats.messages_in) == (4, 2)


async def test_retained_message_reaches_a_late_subscriber_flagged_retained(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    await a.publish("rumor/lab/key/a", b"old", retain=True)
    await a.publish("rumor/lab/key/a", b"new", retain=True)
    await b.subscribe(["rumor/lab/key/#"])
    [message] = await take(b, 1)
    assert (message.payload, message.retained) == (b"new", True)
    await a.publish("rumor/lab/key/a", b"live", retain=True)
    [message] = await take(b, 1)
    assert (message.payload, message.retained) == (b"live", False)


async def test_empty_retained_payload_clears_the_retained_message(
    pair: tuple[MemoryTransport, MemoryTransport], memory: MemoryBroker
) -> None:
    a, b = pair
    await a.publish("t/x", b"kept", retain=True)
    await a.publish("t/x", b"", retain=True)
    assert "t/x" not in memory.retained
    await b.subscribe(["t/#"])
    assert await nothing_pending(b)


async def test_unsubscribe_stops_delivery(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, b = pair
    await b.subscribe(["t/+"])
    await b.unsubscribe(["t/+"])
    await a.publish("t/x", b"gone")
    assert await nothing_pending(b)


async def test_presence_online_then_will_on_abort(memory: MemoryBroker) -> None:
    watcher = await connected(memory, "watcher")
    await watcher.subscribe(["rumor/lab/presence/+"])
    victim = await connected(memory, "v", presence=Presence(topic="rumor/lab/presence/v"))
    [online] = await take(watcher, 1)
    assert (online.topic, online.payload) == ("rumor/lab/presence/v", b"online")
    await victim.abort()
    [offline] = await take(watcher, 1)
    assert offline.payload == b"offline"
    assert memory.retained["rumor/lab/presence/v"] == b"offline"
    assert "v" not in memory.clients
    await watcher.__aexit__(None, None, None)


async def test_clean_close_publishes_offline_itself(memory: MemoryBroker) -> None:
    topic = "rumor/lab/presence/v"
    async with MemoryTransport(memory, client_id="v", presence=Presence(topic=topic)) as v:
        await v.state.wait_up()
        assert memory.retained[topic] == b"online"
    assert memory.retained[topic] == b"offline"
    assert not v.state.is_up
    assert [m async for m in v.messages()] == []  # messages() ends once closed


async def test_publish_while_down_raises_and_reconnect_restores_everything(
    memory: MemoryBroker,
) -> None:
    topic = "rumor/lab/presence/a"
    a = await connected(memory, "a", presence=Presence(topic=topic))
    b = await connected(memory, "b")
    await b.subscribe(["t/+"])
    memory.go_down()
    await asyncio.wait_for(a.state.wait_down(), TIMEOUT_S)
    with pytest.raises(NotConnectedError, match="t/x"):
        await a.publish("t/x", b"lost")
    await b.subscribe(["u/+"])  # recorded while down, applied on reconnect
    memory.go_up()
    await asyncio.wait_for(a.state.wait_up(), TIMEOUT_S)
    await asyncio.wait_for(b.state.wait_up(), TIMEOUT_S)
    await a.publish("t/x", b"after")
    await a.publish("u/x", b"also")
    got = await take(b, 2)
    assert [m.payload for m in got] == [b"after", b"also"]
    assert (a.stats.connects, b.stats.connects) == (2, 2)
    assert memory.retained[topic] == b"online"
    for t in (b, a):
        await t.__aexit__(None, None, None)


def test_client_id_takeover_drops_the_older_session_with_its_will(memory: MemoryBroker) -> None:
    seen: list[tuple[str, bytes, bool]] = []
    old = memory.connect("same", deliver=lambda *m: None, will=("p/old", b"offline"))
    memory.subscribe(
        memory.connect("watcher", deliver=lambda *m: seen.append(m), will=None), ["p/+"]
    )
    memory.connect("same", deliver=lambda *m: None, will=None)
    assert old.lost.is_set()
    assert seen == [("p/old", b"offline", False)]
    assert memory.retained == {"p/old": b"offline"}
    assert memory.clients == ["same", "watcher"]


async def test_large_payload_is_chunked_on_chunk_topics_and_reassembled(
    memory: MemoryBroker,
) -> None:
    a = await connected(memory, "a", max_payload=1000)
    b = await connected(memory, "b", max_payload=1000)
    payload = bytes(range(256)) * 20  # 5120 bytes: 6 chunks of at most 1000
    await a.publish("rumor/lab/key/a", payload, retain=True)
    assert sorted(memory.retained) == [f"rumor/lab/key/a/chunk/{k}" for k in range(6)]
    assert max(len(p) for p in memory.retained.values()) <= 1000
    await b.subscribe(["rumor/lab/key/+"])
    [message] = await take(b, 1)
    assert (message.topic, message.payload, message.retained) == ("rumor/lab/key/a", payload, True)
    assert a.stats.bytes_out == sum(len(p) for p in memory.retained.values())
    for t in (b, a):
        await t.__aexit__(None, None, None)
