import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.chunking import (
    CHUNK_OVERHEAD,
    HEADER_SIZE,
    Reassembler,
    is_chunk,
    packets,
    split,
)
from protocol.errors import BadChunk, ConfigError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reassembler(**kwargs: object) -> Reassembler:
    args: dict[str, object] = {"max_pending_bytes": 1 << 20, "timeout_s": 30.0}
    args.update(kwargs)
    return Reassembler(**args)  # type: ignore[arg-type]


def header(message_id: int, index: int, count: int, total: int, version: int = 1) -> bytes:
    return bytes([0xC1, version]) + struct.pack("<QIII", message_id, index, count, total)


def test_header_layout_is_the_documented_one() -> None:
    chunks = split(b"abcdefgh", max_payload=HEADER_SIZE + 3, message_id=0x0102030405060708)
    assert HEADER_SIZE == 22
    assert chunks[1].hex() == ("c1010807060504030201010000000300000008000000" + b"def".hex())
    assert chunks[2] == header(0x0102030405060708, 2, 3, 8) + b"gh"


@pytest.mark.parametrize("body", [1, 7, 100])
@pytest.mark.parametrize("extra", [-1, 0, 1])
@pytest.mark.parametrize("multiple", [0, 1, 3])
def test_split_and_reassemble_around_multiples_of_the_body(
    body: int, extra: int, multiple: int
) -> None:
    total = max(0, multiple * body + extra)
    data = bytes(random.Random(total).randrange(256) for _ in range(total))
    chunks = split(data, max_payload=HEADER_SIZE + body, message_id=5)
    assert len(chunks) == max(1, -(-total // body))
    assert all(len(c) <= HEADER_SIZE + body for c in chunks)
    assert b"".join(c[HEADER_SIZE:] for c in chunks) == data
    r = reassembler()
    results = [r.feed("p", c) for c in chunks]
    assert results == [None] * (len(chunks) - 1) + [data]
    assert r.pending_bytes == 0
    assert r.pending_sets == 0


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=300),
    body=st.integers(1, 64),
    seed=st.integers(0, 2**32),
)
def test_any_delivery_order_reassembles_the_message(data: bytes, body: int, seed: int) -> None:
    chunks = split(data, max_payload=HEADER_SIZE + body, message_id=seed)
    random.Random(seed).shuffle(chunks)
    r = reassembler()
    out = [r.feed("p", c) for c in chunks]
    assert out[-1] == data
    assert out[:-1] == [None] * (len(chunks) - 1)


def test_interleaved_sets_of_several_senders_and_ids_complete_independently() -> None:
    messages = {(s, m): bytes([m]) * (50 + 13 * m) for s in ("a", "b", "c") for m in range(4)}
    stream = [
        (sender, chunk)
        for (sender, m), data in messages.items()
        for chunk in split(data, max_payload=HEADER_SIZE + 9, message_id=m)
    ]
    random.Random(1).shuffle(stream)
    r = reassembler()
    done = []
    for sender, chunk in stream:
        out = r.feed(sender, chunk)
        if out is not None:
            done.append((sender, out))
    assert sorted(done) == sorted((s, data) for (s, _), data in messages.items())
    assert r.pending_sets == 0


def test_duplicates_are_ignored_and_a_conflicting_duplicate_is_refused_alone() -> None:
    chunks = split(b"0123456789", max_payload=HEADER_SIZE + 4, message_id=1)
    r = reassembler()
    assert r.feed("p", chunks[0]) is None
    assert r.feed("p", chunks[0]) is None  # QoS 1 may deliver twice
    assert r.feed("p", chunks[1]) is None
    assert r.feed("p", chunks[2]) == b"0123456789"
    r.feed("p", chunks[0])
    forged = chunks[0][:HEADER_SIZE] + b"XXXX"
    with pytest.raises(BadChunk, match="chunk 0 of set 1 repeated with different bytes"):
        r.feed("p", forged)
    assert r.pending_sets == 1, "the set keeps the chunk that came first"
    assert r.feed("p", chunks[1]) is None
    assert r.feed("p", chunks[2]) == b"0123456789"
    assert r.pending_sets == 0
    assert r.pending_bytes == 0


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (b"\xc1\x01abc", "chunk of 5 bytes; expected at least a 22-byte header"),
        (header(1, 0, 1, 3, version=2) + b"abc", "header starts c102; expected magic c1"),
        (header(1, 3, 3, 9) + b"abc", "chunk index 3; expected below count 3"),
        (header(1, 0, 0, 9) + b"abc", "chunk count 0 for 9 bytes"),
        (header(1, 0, 10, 9) + b"abc", "chunk count 10 for 9 bytes"),
        (header(1, 0, 2, 4) + b"abcde", "chunk body of 5 bytes; expected at most total 4"),
        (header(1, 0, 2, 2**32 - 1) + b"ab", "chunk set of 4294967295 bytes; the limit is 1048576"),
    ],
)
def test_inconsistent_headers_are_bad_chunks(chunk: bytes, message: str) -> None:
    with pytest.raises(BadChunk, match=message):
        reassembler().feed("p", chunk)


def test_a_chunk_whose_count_or_total_differs_from_the_first_is_refused_alone() -> None:
    """A forged chunk with an id seen on the wire cannot spoil the real set."""
    r = reassembler()
    assert r.feed("p", header(9, 0, 3, 9) + b"abc") is None
    with pytest.raises(BadChunk, match="says count 2, total 9; expected count 3, total 9"):
        r.feed("p", header(9, 1, 2, 9) + b"def")
    assert r.feed("p", header(9, 1, 3, 9) + b"def") is None
    assert r.feed("p", header(9, 2, 3, 9) + b"ghi") == b"abcdefghi"
    assert r.pending_sets == 0


def test_a_chunk_costs_the_same_however_many_sets_are_pending() -> None:
    """Expiry looks only at the oldest sets: no scan of every pending set per chunk."""
    now = [0.0]
    r = Reassembler(max_pending_bytes=1 << 30, timeout_s=10.0, clock=lambda: now[0])
    for i in range(2000):
        r.feed("p", header(i, 0, 2, 2) + b"a")
    scanned = 0
    real_items = dict.items

    class Counting(dict):  # type: ignore[type-arg]
        def items(self):  # type: ignore[no-untyped-def]
            nonlocal scanned
            for item in real_items(self):
                scanned += 1
                yield item

    r._pending = Counting(r._pending)
    now[0] = 5.0
    r.feed("p", header(99999, 0, 2, 2) + b"a")
    assert scanned <= 1
    now[0] = 10.5  # the first 2000 sets are stale now; the new one is not
    r.feed("p", header(99998, 0, 2, 2) + b"a")
    assert r.pending_sets == 2
    assert scanned <= 2000 + 2


def test_sets_with_more_bytes_than_their_total_or_uneven_chunks_are_refused() -> None:
    r = reassembler()
    r.feed("p", header(2, 0, 3, 5) + b"abc")
    with pytest.raises(BadChunk, match="carries more than its total of 5 bytes"):
        r.feed("p", header(2, 1, 3, 5) + b"def")
    r.feed("p", header(3, 0, 3, 5) + b"a")
    r.feed("p", header(3, 1, 3, 5) + b"bcd")
    with pytest.raises(BadChunk, match="chunk 1 of 3 carries 3 bytes; expected 1"):
        r.feed("p", header(3, 2, 3, 5) + b"e")
    r.feed("p", header(4, 0, 2, 5) + b"ab")
    with pytest.raises(BadChunk, match="holds 4 bytes; expected 5"):
        r.feed("p", header(4, 1, 2, 5) + b"cd")
    assert r.pending_sets == 0


def test_a_trailing_empty_chunk_is_refused() -> None:
    # Lengths L, L, 0 add up to total, but count must be ceil(total / L): split() never sends it.
    r = reassembler()
    r.feed("p", header(5, 0, 3, 4) + b"ab")
    r.feed("p", header(5, 1, 3, 4) + b"cd")
    with pytest.raises(BadChunk, match="chunk 2 of 3 is empty; expected 1 to 2 bytes"):
        r.feed("p", header(5, 2, 3, 4))
    assert r.pending_sets == 0
    assert r.feed("p", header(6, 0, 1, 0)) == b"", "an empty envelope is one empty chunk"


def test_stale_partial_sets_expire_and_free_their_bytes() -> None:
    clock = FakeClock()
    r = reassembler(timeout_s=5.0, clock=clock)
    old = split(b"x" * 30, max_payload=HEADER_SIZE + 10, message_id=1)
    new = split(b"y" * 30, max_payload=HEADER_SIZE + 10, message_id=2)
    r.feed("a", old[0])
    clock.now = 3.0
    r.feed("b", new[0])
    assert r.pending_bytes == 2 * (10 + CHUNK_OVERHEAD)
    clock.now = 5.5  # a's set is 5.5 s old, b's 2.5 s
    assert r.feed("b", new[1]) is None
    assert (r.expired, r.pending_sets) == (1, 1)
    assert r.pending_bytes == 2 * (10 + CHUNK_OVERHEAD)
    # a's late chunks start a new set, which cannot complete without the lost first chunk.
    assert r.feed("a", old[1]) is None
    assert r.feed("a", old[2]) is None
    assert r.feed("b", new[2]) == b"y" * 30
    clock.now = 100.0
    assert r.expire() == 1
    assert (r.pending_sets, r.pending_bytes, r.expired) == (0, 0, 2)


def test_the_byte_bound_evicts_the_oldest_other_sets_first() -> None:
    cost = 10 + CHUNK_OVERHEAD
    r = reassembler(max_pending_bytes=3 * cost)
    sets = [split(bytes([i]) * 20, max_payload=HEADER_SIZE + 10, message_id=i) for i in range(4)]
    for i in range(3):
        r.feed("p", sets[i][0])
    assert r.pending_bytes == 3 * cost
    r.feed("p", sets[3][0])  # evicts set 0, the oldest
    assert (r.evicted, r.pending_sets, r.pending_bytes) == (1, 3, 3 * cost)
    assert r.feed("p", sets[3][1]) == bytes([3]) * 20  # evicts set 1, completes set 3
    assert r.evicted == 2
    assert r.feed("p", sets[2][1]) == bytes([2]) * 20
    assert r.feed("p", sets[0][1]) is None  # set 0 was evicted: its second half waits alone


def test_a_set_larger_than_the_bound_is_refused_at_once_without_evicting_others() -> None:
    r = reassembler(max_pending_bytes=2 * (5 + CHUNK_OVERHEAD), max_message_bytes=100)
    r.feed("q", split(b"ab", max_payload=HEADER_SIZE + 1, message_id=0)[0])
    chunks = split(b"z" * 15, max_payload=HEADER_SIZE + 5, message_id=7)
    with pytest.raises(BadChunk, match="chunk set 7 of 'p' needs 207 buffered bytes; max_pend"):
        r.feed("p", chunks[0])
    assert (r.evicted, r.pending_sets, r.pending_bytes) == (0, 1, 1 + CHUNK_OVERHEAD)


def test_whole_envelopes_pass_through_and_are_told_apart_from_chunks() -> None:
    r = reassembler()
    envelope = b"\x8c\xa1v\x01"
    assert r.feed("p", envelope) == envelope
    assert not is_chunk(envelope)
    assert all(not is_chunk(bytes([b])) for b in [*range(0x80, 0x90), 0xDE, 0xDF])
    assert all(is_chunk(c) for c in split(envelope, max_payload=HEADER_SIZE + 1, message_id=0))
    assert not is_chunk(b"")


def test_packets_sends_small_messages_whole_and_splits_large_ones() -> None:
    assert packets(b"abc", max_payload=30, message_id=0) == [b"abc"]
    big = bytes(100)
    out = packets(big, max_payload=HEADER_SIZE + 40, message_id=3)
    assert len(out) == 3
    assert all(is_chunk(p) and len(p) <= HEADER_SIZE + 40 for p in out)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_payload": HEADER_SIZE, "message_id": 0}, "max_payload 22 is too small"),
        ({"max_payload": True, "message_id": 0}, "max_payload True is invalid"),
        ({"max_payload": 100, "message_id": -1}, "message_id -1 is out of range"),
        ({"max_payload": 100, "message_id": 2**64}, "out of range"),
        ({"max_payload": 100, "message_id": 1.0}, "message_id 1.0 is invalid"),
    ],
)
def test_split_and_packets_refuse_bad_parameters(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        split(b"abc", **kwargs)
    with pytest.raises(ConfigError, match=message):
        packets(b"abc", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_pending_bytes": 0}, "max_pending_bytes 0"),
        ({"max_message_bytes": -1}, "max_message_bytes -1"),
        ({"timeout_s": 0.0}, "timeout_s 0.0"),
        ({"timeout_s": float("nan")}, "timeout_s nan"),
    ],
)
def test_reassembler_refuses_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        reassembler(**kwargs)
