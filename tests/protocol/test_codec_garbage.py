"""Decoding bytes from the network: anything but a valid payload raises a ProtocolError subclass."""

from __future__ import annotations

import math
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codecs import Codec, codec_from_spec
from protocol.errors import InconsistentLength, NonFiniteValues, ProtocolError

SPECS = ("raw", "fp16", "int8:block=4", "topk:fraction=0.3", "sign", "randk:fraction=0.3")
CODECS = [codec_from_spec(s) for s in SPECS]


def decode_or_protocol_error(codec: Codec, payload: bytes, n: int) -> None:
    """Decoding either succeeds with a finite [n] float32 vector or raises a ProtocolError."""
    try:
        out = codec.from_bytes(payload, n)
    except ProtocolError:
        return
    assert out.shape == (n,)
    assert out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("codec", CODECS, ids=SPECS)
@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=200), n=st.integers(-3, 120))
def test_arbitrary_bytes_only_raise_protocol_errors(codec: Codec, payload: bytes, n: int) -> None:
    decode_or_protocol_error(codec, payload, n)


@pytest.mark.parametrize("codec", CODECS, ids=SPECS)
@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(0, 120))
def test_random_bytes_of_the_right_length_only_raise_protocol_errors(
    codec: Codec, data: st.DataObject, n: int
) -> None:
    size = codec.payload_size(n)
    payload = data.draw(st.binary(min_size=size, max_size=size))
    decode_or_protocol_error(codec, payload, n)


@pytest.mark.parametrize("codec", CODECS, ids=SPECS)
def test_wrong_lengths_name_actual_and_expected(codec: Codec) -> None:
    good = codec.to_bytes(torch.randn(40))
    for payload in (good[:-1], good + b"\0", b""):
        with pytest.raises(InconsistentLength, match=f"{len(payload)} bytes, expected {len(good)}"):
            codec.from_bytes(payload, 40)
    with pytest.raises(InconsistentLength, match="-1"):
        codec.from_bytes(good, -1)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("spec", "payload", "n"),
    [
        ("raw", struct.pack("<3f", 1.0, NAN, 2.0), 3),
        ("raw", struct.pack("<f", -INF), 1),
        ("fp16", struct.pack("<2e", 1.0, INF), 2),
        ("int8:block=2", struct.pack("<2f3b", 1.0, NAN, 1, 1, 1), 3),
        ("int8:block=2", struct.pack("<f2b", 3e38, 127, 127), 2),  # finite scale, inf product
        ("topk:fraction=0.5", struct.pack("<2I2f", 0, 1, 1.0, INF), 3),
        ("sign", struct.pack("<fB", NAN, 0), 3),
        ("randk:fraction=0.5", struct.pack("<Q2f", 9, NAN, 1.0), 4),
    ],
)
def test_non_finite_values_are_rejected(spec: str, payload: bytes, n: int) -> None:
    with pytest.raises(NonFiniteValues, match="expected finite"):
        codec_from_spec(spec).from_bytes(payload, n)


@pytest.mark.parametrize(
    ("indices", "fragment"),
    [
        ((0, 10), "index 10 out of range; expected < n=10"),
        ((2**32 - 1, 0), "index 4294967295 out of range"),
        ((3, 3), "index 3 appears more than once"),
        ((7, 3), None),  # any order is accepted
    ],
)
def test_topk_rejects_out_of_range_and_repeated_indices(
    indices: tuple[int, int], fragment: str | None
) -> None:
    codec = codec_from_spec("topk:fraction=0.2")
    payload = struct.pack("<2I2f", *indices, 1.0, 2.0)
    if fragment is None:
        out = codec.from_bytes(payload, 10)
        assert out[indices[0]] == 1.0
        assert out[indices[1]] == 2.0
        assert int((out != 0).sum()) == 2
        return
    with pytest.raises(InconsistentLength, match=fragment):
        codec.from_bytes(payload, 10)


def test_sign_readers_ignore_padding_bits() -> None:
    out = codec_from_spec("sign").from_bytes(struct.pack("<fB", 2.0, 0b11111010), 3)
    assert out.tolist() == [2.0, -2.0, 2.0]


def test_int8_accepts_code_minus_128() -> None:
    out = codec_from_spec("int8:block=2").from_bytes(struct.pack("<f2b", 0.5, -128, 127), 2)
    assert out.tolist() == [-64.0, 63.5]


def test_decoders_allocate_in_proportion_to_n_only() -> None:
    # A huge length claim inside the payload cannot matter: lengths come from n and the spec.
    codec = codec_from_spec("topk:fraction=0.5")
    k = math.ceil(0.5 * 8)
    payload = struct.pack(f"<{k}I{k}f", *range(k), *([1.0] * k))
    assert codec.from_bytes(payload, 8).shape == (8,)
    with pytest.raises(InconsistentLength):
        codec.from_bytes(payload, 10**12)
