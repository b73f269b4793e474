"""The broker's Maximum Packet Size (MQTT 5 CONNACK) caps the chunks: never a packet it refuses."""

from __future__ import annotations

import random
from pathlib import Path

import aiomqtt
import pytest

from peer.broker import Broker
from peer.transport.base import TransportStats
from peer.transport.chunks import MIN_CHUNK_PAYLOAD, ChunkLayer, packet_room
from peer.transport.errors import TransportError
from peer.transport.mqtt import PACKET_ROOM
from tests.peer.test_transport_mqtt import client, take

pytestmark = pytest.mark.broker

TOPIC = "rumor/lab/key/a"


async def test_chunks_fit_the_limit_the_broker_announces(tmp_path: Path) -> None:
    """Configured for 124 KiB chunks (or none at all) against a broker that takes 4 KiB
    packets: each publish was a packet too large, and the broker dropped the connection."""
    payload = random.Random(5).randbytes(40_000)
    async with (
        Broker.start(max_packet_size=4096, log_dir=tmp_path) as small,
        client(small, "a", max_payload=126_976) as a,
        client(small, "whole") as whole,
        client(small, "b") as b,
    ):
        await b.subscribe(["rumor/lab/key/+"])
        for sender in (a, whole):
            assert sender._chunks.payload_limit(TOPIC) == 4096 - packet_room(TOPIC)
            await sender.publish(TOPIC, payload, qos=1)
            [message] = await take(b, 1)
            assert message.payload == payload
            assert sender.stats.connects == 1  # never cut off
        assert b.stats.rejected == {}


async def test_a_larger_limit_never_makes_chunks_larger(tmp_path: Path) -> None:
    async with (
        Broker.start(max_packet_size=1_048_576, log_dir=tmp_path) as big,
        client(big, "a", max_payload=3000) as a,
        client(big, "b") as b,
    ):
        assert a._chunks.payload_limit(TOPIC) == 3000
        await b.subscribe(["rumor/lab/key/+"])
        payload = random.Random(6).randbytes(10_000)
        await a.publish(TOPIC, payload, qos=1)
        [message] = await take(b, 1)
        assert message.payload == payload
        assert a.stats.bytes_out > len(payload)  # four chunks' headers


async def test_no_limit_announced_keeps_max_payload(broker: Broker) -> None:
    async with client(broker, "a", max_payload=3000) as a, client(broker, "b") as b:
        assert a._chunks.payload_limit(TOPIC) == 3000
        assert b._chunks.payload_limit(TOPIC) is None


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_the_broker_drops_what_is_longer_than_a_client_takes(
    broker: Broker, protocol: str
) -> None:
    """MQTT 5: the CONNECT announces max_message_bytes plus PACKET_ROOM, so a hostile
    publisher's huge message never reaches the client's memory; the small one after it does.
    MQTT 3.1.1 has no such property: the client reads the message, then refuses it."""
    limit = 1024
    huge = random.Random(7).randbytes(limit + PACKET_ROOM + 1)
    async with (
        client(broker, "b", max_message_bytes=limit, protocol=protocol) as b,
        aiomqtt.Client(broker.host, broker.port, identifier="hostile") as hostile,
    ):
        await b.subscribe(["rumor/lab/key/+"])
        await hostile.publish(TOPIC, huge, qos=1)
        await hostile.publish(TOPIC, b"small", qos=1)
        [message] = await take(b, 1)
        assert message.payload == b"small"
        assert b.stats.connects == 1  # not a reason to cut the link
        if protocol == "5":
            assert b.stats.rejected == {}  # the broker dropped it: it never reached the client
        else:
            assert sum(b.stats.rejected.values()) == 1  # read whole, then refused


def test_a_limit_too_small_for_chunks_refuses_instead_of_splitting_into_bytes() -> None:
    """A broker announcing a tiny Maximum Packet Size (``rumor up --max-packet-size 100``
    reaches it): a 400 KB message was cut into 13,794 one-to-three-byte chunks, 3.7 MB of
    Python objects; now it is refused with the reason, and what fits in a packet still goes."""
    layer = ChunkLayer(max_payload=126_976, max_message_bytes=None, stats=TransportStats())
    layer.fit(100)
    room = 100 - packet_room(TOPIC)
    assert layer.outgoing(TOPIC, b"x" * room) == [(TOPIC, b"x" * room)]
    with pytest.raises(TransportError, match=r"at most 100 bytes.*raise the broker's"):
        layer.outgoing(TOPIC, bytes(400_000))
    layer.fit(packet_room(TOPIC) + MIN_CHUNK_PAYLOAD)  # the smallest limit that still chunks
    assert len(layer.outgoing(TOPIC, bytes(4_000))) == -(-4_000 // (MIN_CHUNK_PAYLOAD - 22))
