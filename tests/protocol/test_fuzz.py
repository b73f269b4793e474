"""Hostile input: only ProtocolError subclasses may come out, and memory stays bounded."""

import contextlib
import math
import struct
import tracemalloc

import msgpack
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.choco import ChocoReceiver
from protocol.chunking import HEADER_SIZE, Reassembler, split
from protocol.envelope import decode_envelope, encode_envelope
from protocol.errors import BadChunk, ProtocolError
from protocol.frame import Frame
from protocol.spec import Spec
from protocol.validation import Expectations, accept
from tests.protocol.test_envelope import MODEL, make_envelope, pack, valid_fields

LIMIT = 1 << 16
EXPECTED = Expectations(
    swarm="lab", model=MODEL, senders=frozenset({"pi-07"}), n_params=4, max_bytes=LIMIT
)
# A delta that accept() applies: topk keeps k = 1 of n = 4 entries, index 2, value 1.5.
DELTA = Frame(
    kind="delta",
    seq=12,
    base=11,
    codec=Spec("topk", {"fraction": 0.25}),
    n=4,
    payload=struct.pack("<If", 2, 1.5),
)
VALID = encode_envelope(make_envelope(frame=DELTA))
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def primed_receiver() -> ChocoReceiver:
    """A receiver holding frame 11 of pi-07, so well-formed deltas with base 11 get applied."""
    receiver = ChocoReceiver(4)
    key = Frame(kind="key", seq=11, base=None, codec=Spec("raw"), n=4, payload=bytes(16))
    accept(encode_envelope(make_envelope(frame=key)), EXPECTED, receiver)
    return receiver


def only_protocol_errors(data: bytes) -> None:
    """Feed ``data`` to the decoder and to accept(); anything but a ProtocolError fails the test."""
    with contextlib.suppress(ProtocolError):
        decode_envelope(data, max_bytes=LIMIT)
    receiver = primed_receiver()
    before = receiver.copy_of("pi-07").clone()  # type: ignore[union-attr]
    try:
        _, copy = accept(data, EXPECTED, receiver)
    except ProtocolError:
        # A rejected message changes nothing.
        assert receiver.last_seq("pi-07") == 11
        assert torch.equal(receiver.copy_of("pi-07"), before)  # type: ignore[arg-type]
    else:
        assert bool(torch.isfinite(copy).all())


def test_the_base_message_is_accepted() -> None:
    _, copy = accept(VALID, EXPECTED, primed_receiver())
    assert copy.tolist() == [0.0, 0.0, 1.5, 0.0]


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    only_protocol_errors(data)


@FUZZ
@given(first=st.sampled_from([0x8D, 0x8C, 0xDE, 0xDF]), rest=st.binary(max_size=200))
def test_random_bytes_after_a_map_header(first: int, rest: bytes) -> None:
    only_protocol_errors(bytes([first]) + rest)


def test_seeded_random_strings() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(3000):
        size = int(rng.integers(0, 160))
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if size and rng.random() < 0.5:
            data = bytes([int(rng.choice([0x8D, 0xDE, 0xDF]))]) + data[1:]
        with contextlib.suppress(ProtocolError):
            decode_envelope(data, max_bytes=LIMIT)


def test_every_bit_flip_and_every_truncation_of_a_valid_message() -> None:
    mutants = [VALID[:cut] for cut in range(len(VALID))]
    for i in range(len(VALID) * 8):
        flipped = bytearray(VALID)
        flipped[i // 8] ^= 1 << (i % 8)
        mutants.append(bytes(flipped))
    for data in mutants:
        only_protocol_errors(data)


def test_random_splices_of_a_valid_message() -> None:
    rng = np.random.default_rng(7)
    for _ in range(1500):
        data = bytearray(VALID)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(data) + 1))
            op = rng.integers(0, 3)
            if op == 0:
                data[at:at] = rng.integers(
                    0, 256, int(rng.integers(1, 6)), dtype=np.uint8
                ).tobytes()
            elif op == 1:
                del data[at : at + int(rng.integers(1, 6))]
            else:
                data[at : at + 1] = bytes([int(rng.integers(0, 256))])
        only_protocol_errors(bytes(data))


POOL: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**64 - 1,
    -(2**63),
    1.5,
    math.nan,
    -math.inf,
    "",
    "x" * 300,
    b"",
    b"\x00" * 40,
    [],
    [1, "a"],
    {},
    {"name": "raw"},
    {"name": "raw", "params": []},
    {"a": {"b": {"c": {}}}},
    msgpack.ExtType(5, b"x"),
]


def test_every_field_replaced_by_every_type_and_swapped_with_every_other() -> None:
    base = {**valid_fields(), "payload": DELTA.payload}
    for name in base:
        for value in POOL:
            only_protocol_errors(pack({**base, name: value}))
        for other in base:
            only_protocol_errors(pack({**base, name: base[other], other: base[name]}))


@pytest.mark.parametrize(
    "header",
    [
        b"\xc6\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xdd\xff\xff\xff\xff",
        b"\xdf\xff\xff\xff\xff",
        b"\xc9\xff\xff\xff\xff\x01",
        b"\xc5\xff\xff",
        b"\xdd\x7f\xff\xff\xff",
    ],
)
def test_huge_length_prefixes_stay_small_in_memory(header: bytes) -> None:
    hostile = [
        (b"\x81\xa7payload" + header).ljust(100, b"\x01"),
        header.ljust(100, b"\x00"),
        VALID[: VALID.index(b"\xc4\x08")] + header + b"\x00" * 40,
    ]
    for data in hostile:
        tracemalloc.start()
        try:
            with pytest.raises(ProtocolError):
                decode_envelope(data, max_bytes=2**32 - 1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2 * 2**20, f"{data[:12].hex()} made the decoder allocate {peak} bytes"


@pytest.mark.parametrize(
    "nested",
    [
        b"\x81\xa1a" * 50_000 + b"\xc0",
        b"\x91" * 50_000 + b"\xc0",
        b"\x81\xa1a\x91" * 20_000 + b"\x80",
    ],
)
def test_deeply_nested_values_are_malformed_not_a_crash(nested: bytes) -> None:
    only_protocol_errors(nested)


def flood(reassembler: Reassembler, bound: int, packets: list[tuple[str, bytes]]) -> int:
    completed = 0
    for sender, packet in packets:
        try:
            out = reassembler.feed(sender, packet)
        except BadChunk:
            out = None
        completed += out is not None
        assert reassembler.pending_bytes <= bound
    return completed


def random_chunks(rng: np.random.Generator, count: int) -> list[tuple[str, bytes]]:
    """Chunks with plausible but random headers, from 12 senders and 8 message ids."""
    packets = []
    for _ in range(count):
        total = int(rng.integers(0, 400))
        n_chunks = int(rng.integers(1, 9))
        index = int(rng.integers(0, n_chunks + 1))  # sometimes out of range
        header = bytes([0xC1, 1]) + struct.pack(
            "<QIII", int(rng.integers(0, 8)), index, n_chunks, total
        )
        body = rng.integers(0, 256, int(rng.integers(0, 60)), dtype=np.uint8).tobytes()
        packets.append((f"p{int(rng.integers(0, 12))}", header + body))
    return packets


def test_reassembler_flood_stays_within_its_bound_and_raises_only_bad_chunk() -> None:
    rng = np.random.default_rng(3)
    bound = 4096
    r = Reassembler(max_pending_bytes=bound, timeout_s=1e9)
    flood(r, bound, random_chunks(rng, 4000))
    # Valid sets, interleaved with garbage and bit-flipped chunks, still get through.
    good = [
        ("good", c) for c in split(bytes(range(200)), max_payload=HEADER_SIZE + 30, message_id=9)
    ]
    noise = random_chunks(rng, 200)
    flipped = []
    for _, chunk in good:
        bad = bytearray(chunk)
        bad[int(rng.integers(0, len(bad)))] ^= 0xFF
        flipped.append(("evil", bytes(bad)))
    stream = good + noise + flipped
    order = rng.permutation(len(stream))
    r2 = Reassembler(max_pending_bytes=64 * 1024, timeout_s=1e9)
    assert flood(r2, 64 * 1024, [stream[i] for i in order]) >= 1
    assert r.evicted > 0


@FUZZ
@given(packets=st.lists(st.tuples(st.sampled_from("abc"), st.binary(max_size=60)), max_size=30))
def test_reassembler_takes_arbitrary_packets(packets: list[tuple[str, bytes]]) -> None:
    r = Reassembler(max_pending_bytes=1024, timeout_s=5.0)
    flood(r, 1024, [(s, bytes([0xC1, 1]) + p) for s, p in packets])
