"""MqttTransport against a real Mosquitto started on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peer.broker import Broker
from peer.transport import (
    Backoff,
    Message,
    MqttProtocol,
    MqttSettings,
    MqttTransport,
    NotConnectedError,
    Presence,
    TransportError,
)
from peer.transport.filters import matches

pytestmark = pytest.mark.broker

WAIT_S = 5.0
FAST = Backoff(base_s=0.05, cap_s=0.2)


def settings(broker: Broker, client_id: str, **kw: object) -> MqttSettings:
    return MqttSettings(
        client_id=client_id,
        host=broker.host,
        port=broker.port,
        keepalive_s=5,
        connect_timeout_s=3.0,
        backoff=FAST,
        **kw,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def client(
    broker: Broker, client_id: str, *, presence: str | None = None, **kw: object
) -> AsyncIterator[MqttTransport]:
    p = None if presence is None else Presence(topic=presence)
    async with MqttTransport(
        settings(broker, client_id, **kw), presence=p, rng=random.Random(0)
    ) as t:
        await asyncio.wait_for(t.state.wait_up(), WAIT_S)
        yield t


async def take(transport: MqttTransport, n: int, *, wait_s: float = WAIT_S) -> list[Message]:
    out: list[Message] = []
    async with asyncio.timeout(wait_s):
        async for message in transport.messages():
            out.append(message)
            if len(out) == n:
                break
    return out


async def quiet(transport: MqttTransport, wait_s: float = 0.3) -> bool:
    """True if nothing arrives within ``wait_s`` (used after a sync point, never alone)."""
    try:
        await take(transport, 1, wait_s=wait_s)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_publish_subscribe_round_trip(broker: Broker, protocol: MqttProtocol) -> None:
    async with client(broker, "a", protocol=protocol) as a, client(broker, "b") as b:
        await b.subscribe(["rumor/lab/delta/+"])
        await a.publish("rumor/lab/key/a", b"not subscribed", qos=1)
        await a.publish("rumor/lab/delta/a", b"\x00\xffdelta", qos=1)
        [message] = await take(b, 1)
        assert message == Message(topic="rumor/lab/delta/a", payload=b"\x00\xffdelta")
        assert await quiet(b)
        assert a.stats.messages_out == 2
        assert a.stats.bytes_out == len(b"not subscribed") + len(b"\x00\xffdelta")


async def test_filter_matching_agrees_with_mosquitto(session_broker: Broker) -> None:
    root = "agree"
    filters = [f"{root}/+/key/+", f"{root}/lab/#", f"{root}/+", f"{root}/lab/+/x"]
    topics = [
        f"{root}/lab/key/p",
        f"{root}/lab",
        f"{root}/x",
        f"{root}/lab/delta/x",
        f"{root}/o/key/p",
    ]
    for pattern in filters:
        async with client(session_broker, "pub") as pub, client(session_broker, "sub") as sub:
            await sub.subscribe([pattern])
            for topic in topics:
                await pub.publish(topic, topic.encode(), qos=1)
            await pub.publish(f"{root}/lab/end", b"end", qos=1)  # matches f"{root}/lab/#" only
            expected = [t for t in topics if matches(pattern, t)]
            if matches(pattern, f"{root}/lab/end"):
                got = [m.topic for m in await take(sub, len(expected) + 1)]
                assert got == [*expected, f"{root}/lab/end"]
            else:
                got = [m.topic for m in await take(sub, len(expected))] if expected else []
                assert got == expected
                assert await quiet(sub)


async def test_retained_keyframe_reaches_a_late_subscriber(broker: Broker) -> None:
    async with client(broker, "a") as a:
        await a.publish("rumor/lab/key/a", b"v1", qos=1, retain=True)
        await a.publish("rumor/lab/key/a", b"v2", qos=1, retain=True)
    async with client(broker, "late") as late:
        await late.subscribe(["rumor/lab/key/+"])
        [message] = await take(late, 1)
        assert (message.topic, message.payload, message.retained) == (
            "rumor/lab/key/a",
            b"v2",
            True,
        )


async def test_presence_online_and_offline_on_clean_close(broker: Broker) -> None:
    async with client(broker, "watch") as watch:
        await watch.subscribe(["rumor/lab/presence/+"])
        async with client(broker, "p1", presence="rumor/lab/presence/p1"):
            [online] = await take(watch, 1)
            assert (online.topic, online.payload) == ("rumor/lab/presence/p1", b"online")
        [offline] = await take(watch, 1)
        assert offline.payload == b"offline"


_VICTIM = """
import asyncio, sys
from peer.transport import MqttSettings, MqttTransport, Presence

async def main() -> None:
    s = MqttSettings(client_id="victim", port=int(sys.argv[1]), keepalive_s=5)
    async with MqttTransport(s, presence=Presence(topic=sys.argv[2])) as t:
        await t.state.wait_up()
        print("up", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_will_says_offline_when_a_peer_is_killed(broker: Broker) -> None:
    topic = "rumor/lab/presence/victim"
    async with client(broker, "watch") as watch:
        await watch.subscribe([topic])
        victim = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _VICTIM, str(broker.port), topic,
            stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        try:
            assert victim.stdout is not None
            assert await asyncio.wait_for(victim.stdout.readline(), WAIT_S) == b"up\n"
            [online] = await take(watch, 1)
            assert online.payload == b"online"
            victim.kill()  # no DISCONNECT packet: only the broker's will can say offline
        finally:
            with contextlib.suppress(ProcessLookupError):
                victim.kill()
            await victim.wait()
        [offline] = await take(watch, 1)
        assert (offline.topic, offline.payload) == (topic, b"offline")


async def test_chunked_payload_passes_a_broker_packet_limit(tmp_path: Path) -> None:
    payload = random.Random(3).randbytes(40_000)
    async with Broker.start(max_packet_size=4096, log_dir=tmp_path) as small:
        async with client(small, "a", max_payload=3000) as a, client(small, "b") as b:
            await b.subscribe(["rumor/lab/key/+"])
            await a.publish("rumor/lab/key/a", payload, qos=1, retain=True)
            [message] = await take(b, 1)
            assert (message.topic, message.payload) == ("rumor/lab/key/a", payload)
            assert a.stats.bytes_out > len(payload)  # headers of 14 chunks
        async with client(small, "late") as late:  # retained chunks survive as a set
            await late.subscribe(["rumor/lab/key/+"])
            [message] = await take(late, 1)
            assert (message.payload, message.retained) == (payload, True)
        async with client(small, "unchunked", protocol="3.1.1") as raw:
            # The limit is real: the same payload unchunked does not get through (over MQTT
            # 3.1.1, whose CONNACK cannot say the limit: over 5 the transport fits to it).
            with pytest.raises(TransportError):
                await raw.publish("rumor/lab/key/raw", payload, qos=1)


async def test_reconnects_after_broker_restart_and_resubscribes(broker: Broker) -> None:
    presence = "rumor/lab/presence/a"
    async with client(broker, "a", presence=presence) as a, client(broker, "b") as b:
        await b.subscribe(["rumor/lab/delta/+"])
        await asyncio.to_thread(broker.stop)
        await asyncio.wait_for(a.state.wait_down(), WAIT_S)
        with pytest.raises(NotConnectedError):
            await a.publish("rumor/lab/delta/a", b"lost", qos=1)
        assert a.state.last_error is not None
        await asyncio.to_thread(broker.launch)
        await asyncio.wait_for(a.state.wait_up(), WAIT_S)
        await asyncio.wait_for(b.state.wait_up(), WAIT_S)
        await a.publish("rumor/lab/delta/a", b"after", qos=1)
        [message] = await take(b, 1)
        assert message.payload == b"after"
        assert (a.stats.connects, b.stats.connects) == (2, 2)
        async with client(broker, "c") as c:  # presence re-announced on the new broker
            await c.subscribe([presence])
            [online] = await take(c, 1)
            assert (online.payload, online.retained) == (b"online", True)


async def test_a_connect_attempt_that_hangs_is_cut_at_connect_timeout(tmp_path: Path) -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so a TCP connect
    # hangs (as to a broker that stopped accepting but still holds its port). paho alone would
    # wait 5 s per attempt; the attempt as a whole must end at connect_timeout_s and retry.
    with contextlib.ExitStack() as stack:
        hole = stack.enter_context(socket.socket())
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        port = hole.getsockname()[1]
        for _ in range(4):  # fill the accept queue; later ones may already hang: fine
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        mqtt = MqttSettings(
            client_id="hole", port=port, connect_timeout_s=0.2, backoff=FAST, keepalive_s=5
        )
        async with MqttTransport(mqtt, rng=random.Random(0)) as transport:
            async with asyncio.timeout(30.0):
                while True:
                    if "connect_timeout_s" in (transport.state.last_error or ""):
                        break
                    await asyncio.sleep(0.02)  # polling: the state has no change event
            assert not transport.state.is_up
