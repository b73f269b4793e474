"""The transport's pure parts: topic filters, backoff, the inbox and the chunk layer."""

from __future__ import annotations

import itertools
import logging
import random
import statistics

import pytest

from peer.transport.backoff import Backoff, backoff_ceiling, backoff_delay
from peer.transport.base import Message, TransportStats
from peer.transport.chunks import (
    EVICTED_CHUNK_SET,
    EXPIRED_CHUNK_SET,
    ChunkLayer,
    chunk_base,
    chunk_topic,
)
from peer.transport.filters import check_filter, check_topic, matches
from peer.transport.inbox import Inbox
from protocol.chunking import split
from protocol.errors import ConfigError

# The non-normative examples of MQTT 3.1.1 section 4.7, plus the $-topic rule (4.7.2).
SPEC_CASES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/broker/uptime", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("rumor/lab/key/+", "rumor/lab/key/pi-07/chunk/0", False),
    ("rumor/lab/key/+/chunk/+", "rumor/lab/key/pi-07/chunk/12", True),
]


@pytest.mark.parametrize(("pattern", "topic", "expected"), SPEC_CASES)
def test_filter_matching_follows_the_mqtt_spec(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


@pytest.mark.parametrize("pattern", ["", "a/#/b", "a/b#", "a+/b", "sport/tennis#"])
def test_invalid_filters_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError, match="filter"):
        check_filter(pattern)


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00b"])
def test_wildcards_cannot_be_published_to(topic: str) -> None:
    with pytest.raises(ConfigError, match="topic"):
        check_topic(topic)


def test_backoff_ceiling_doubles_then_caps() -> None:
    ceilings = [backoff_ceiling(a, base=0.5, cap=5.0) for a in range(7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff_ceiling(10_000, base=0.5, cap=5.0) == 5.0


def test_full_jitter_is_uniform_below_the_ceiling_and_seeded() -> None:
    draws = [backoff_delay(3, base=1.0, cap=30.0, rng=random.Random(i)) for i in range(4000)]
    assert min(draws) >= 0.0
    assert max(draws) <= 8.0
    # Uniform on [0, 8]: mean 4, standard deviation 8 / sqrt(12) = 2.31.
    assert statistics.fmean(draws) == pytest.approx(4.0, abs=0.15)
    assert statistics.pstdev(draws) == pytest.approx(8.0 / 12**0.5, abs=0.1)
    a = [Backoff(base_s=0.1, cap_s=1.0).delay(n, random.Random(7)) for n in range(5)]
    b = [Backoff(base_s=0.1, cap_s=1.0).delay(n, random.Random(7)) for n in range(5)]
    assert a == b


def test_backoff_policy_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"base_s=2\.0, cap_s=1\.0"):
        Backoff(base_s=2.0, cap_s=1.0)


async def test_inbox_drops_newest_when_full_and_ends_when_closed() -> None:
    stats = TransportStats()
    inbox = Inbox(maxsize=2, stats=stats)
    for i in range(3):
        inbox.put(Message(topic="t", payload=bytes([i])))
    inbox.close()
    inbox.put(Message(topic="t", payload=b"late"))
    received = [m.payload async for m in inbox]
    assert received == [b"\x00", b"\x01"]
    assert (stats.messages_in, stats.dropped_incoming) == (2, 1)
    assert [m async for m in inbox] == []  # a second iteration ends at once too


def test_chunk_topics_round_trip() -> None:
    assert chunk_topic("rumor/lab/key/pi", 3) == "rumor/lab/key/pi/chunk/3"
    assert chunk_base("rumor/lab/key/pi/chunk/3") == "rumor/lab/key/pi"
    assert chunk_base("rumor/lab/key/chunk") is None
    assert chunk_base("chunk/3") is None
    assert chunk_base("rumor/lab/key/pi/chunk/x") is None


def test_chunk_layer_splits_and_reassembles_in_any_order() -> None:
    stats = TransportStats()
    layer = ChunkLayer(max_payload=300, max_message_bytes=10_000, stats=stats)
    payload = random.Random(1).randbytes(2000)
    parts = layer.outgoing("rumor/lab/key/a", payload)
    assert len(parts) == 8  # ceil(2000 / (300 - 22 header bytes))
    assert all(len(p) <= 300 for _, p in parts)
    assert [t for t, _ in parts] == [f"rumor/lab/key/a/chunk/{k}" for k in range(8)]
    random.Random(2).shuffle(parts)
    out = [layer.incoming(t, p, retained=True) for t, p in parts]
    assert out[:-1] == [None] * 7
    assert out[-1] == Message(topic="rumor/lab/key/a", payload=payload, retained=True)
    assert stats.bytes_in == sum(len(p) for _, p in parts)


def test_chunk_layer_passes_small_payloads_and_accepts_same_topic_chunks() -> None:
    layer = ChunkLayer(max_payload=300, max_message_bytes=10_000, stats=TransportStats())
    assert layer.outgoing("t/a", b"small") == [("t/a", b"small")]
    assert layer.incoming("t/a", b"small", retained=False) == Message(topic="t/a", payload=b"small")
    # A peer that sends chunks on the base topic itself is understood too.
    chunks = split(b"x" * 700, max_payload=300, message_id=5)
    got = [layer.incoming("t/a", c, retained=False) for c in chunks]
    assert got[-1] == Message(topic="t/a", payload=b"x" * 700)


def test_chunk_layer_counts_bad_chunks_instead_of_raising() -> None:
    stats = TransportStats()
    layer = ChunkLayer(max_payload=300, max_message_bytes=1000, stats=stats)
    assert layer.incoming("t/a/chunk/0", b"\xc1\x01garbage", retained=False) is None
    oversized = split(b"y" * 5000, max_payload=300, message_id=9)[0]
    assert layer.incoming("t/a/chunk/0", oversized, retained=False) is None
    assert stats.rejected == {"bad_chunk": 2}


def test_message_ids_are_not_predictable() -> None:
    layer = ChunkLayer(max_payload=64, max_message_bytes=None, stats=TransportStats())
    ids = [int.from_bytes(layer.outgoing("t", bytes(100))[0][1][2:10], "little") for _ in range(20)]
    steps = {b - a for a, b in itertools.pairwise(ids)}
    assert len(steps) > 1, "sequential ids: the next one is known to anyone who saw one"


def test_a_whole_message_over_the_limit_never_reaches_the_inbox() -> None:
    stats = TransportStats()
    layer = ChunkLayer(max_payload=None, max_message_bytes=1024, stats=stats)
    assert layer.incoming("rumor/s/key/p1", bytes(1025), retained=False) is None
    assert stats.rejected == {"oversized_message": 1}
    assert layer.incoming("rumor/s/key/p1", bytes(1024), retained=False) is not None


def test_a_flood_into_a_full_inbox_logs_one_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = TransportStats()
    inbox = Inbox(maxsize=1, stats=stats)
    with caplog.at_level(logging.WARNING, logger="peer.transport.inbox"):
        for _ in range(1000):
            inbox.put(Message(topic="rumor/s/key/p1", payload=b"x"))
    assert stats.dropped_incoming == 999
    assert len([r for r in caplog.records if "inbox full" in r.getMessage()]) == 1


def test_every_neighbours_chunked_frame_can_be_in_flight_at_once() -> None:
    """A round starts with all neighbours publishing: 15 half-received 200 kB keyframes must
    not evict each other, even when the message limit (from the model size) is 500 kB."""
    stats = TransportStats()
    layer = ChunkLayer(max_payload=None, max_message_bytes=500_000, stats=stats)
    frames = {f"p{i}": bytes([i]) * 200_000 for i in range(15)}
    parts = {
        p: split(data, max_payload=100_022, message_id=i)
        for i, (p, data) in enumerate(frames.items())
    }
    for peer, chunks in parts.items():
        assert layer.incoming(f"rumor/s/key/{peer}/chunk/0", chunks[0], retained=False) is None
    for peer, chunks in parts.items():
        whole = layer.incoming(f"rumor/s/key/{peer}/chunk/1", chunks[1], retained=False)
        assert whole is not None
        assert whole.payload == frames[peer]
    assert stats.rejected == {}


def test_chunk_sets_dropped_for_time_or_memory_are_counted_as_rejections() -> None:
    stats = TransportStats()
    # A budget of 4000 bytes; a timeout so short that a set is stale at the next packet.
    layer = ChunkLayer(
        max_payload=300, max_message_bytes=1000, stats=stats, reassembly_timeout_s=1e-9
    )
    first = split(b"z" * 900, max_payload=300, message_id=1)[0]
    assert layer.incoming("t/a/chunk/0", first, retained=False) is None
    assert layer.incoming("t/b", b"whole", retained=False) is not None
    assert stats.rejected == {EXPIRED_CHUNK_SET: 1}

    stats = TransportStats()
    layer = ChunkLayer(max_payload=300, max_message_bytes=1000, stats=stats, max_pending_bytes=4000)
    # Four partial sets of 3 chunks (834 bytes + 3 * 64 of bookkeeping = 1026 each) from four
    # senders: over the 4000-byte budget at the last chunk, so the oldest set is evicted.
    for k in range(4):
        for part in split(bytes([k]) * 1000, max_payload=300, message_id=k)[:-1]:
            assert layer.incoming(f"t/p{k}", part, retained=False) is None
    assert stats.rejected == {EVICTED_CHUNK_SET: 1}
