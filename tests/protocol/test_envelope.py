import math
import re
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.chunking import split
from protocol.envelope import MAX_N, Envelope, decode_envelope, encode_envelope
from protocol.errors import (
    ConfigError,
    MalformedMessage,
    OversizedMessage,
    ProtocolError,
    TruncatedMessage,
    VersionMismatch,
)
from protocol.fingerprint import fingerprint
from protocol.frame import Frame
from protocol.spec import Spec

MAX_INT = 2**63 - 1
MODEL = "0123456789abcdef"
LIMIT = 1 << 20


def valid_fields() -> dict[str, object]:
    """A v1 delta envelope as a plain map, built without encode_envelope."""
    return {
        "v": 1,
        "swarm": "lab",
        "sender": "pi-07",
        "round": 12,
        "kind": "delta",
        "seq": 12,
        "base": 11,
        "model": MODEL,
        "codec": {"name": "topk", "params": {"fraction": 0.25}},
        "n": 4,
        "payload": bytes(range(8)),
        "meta": {"loss": 0.5, "samples": 32, "note": "ok"},
    }


def pack(fields: object) -> bytes:
    data: bytes = msgpack.packb(fields, use_bin_type=True)
    return data


def make_envelope(**changes: object) -> Envelope:
    frame = Frame(
        kind="delta",
        seq=12,
        base=11,
        codec=Spec("topk", {"fraction": 0.25}),
        n=4,
        payload=bytes(range(8)),
    )
    args: dict[str, object] = {
        "swarm": "lab",
        "sender": "pi-07",
        "round": 12,
        "frame": frame,
        "model": MODEL,
        "meta": {"loss": 0.5, "samples": 32, "note": "ok"},
    }
    args.update(changes)
    return Envelope(**args)  # type: ignore[arg-type]


def test_decoding_a_hand_packed_map_fills_every_field() -> None:
    env = decode_envelope(pack(valid_fields()), max_bytes=LIMIT)
    assert env == make_envelope()
    assert env.v == 1
    assert env.sig is None
    assert env.frame.codec == Spec("topk", {"fraction": 0.25})


def test_encoding_writes_the_documented_keys_in_order_with_msgpack_types() -> None:
    data = encode_envelope(make_envelope(sig=b"\x01\x02"))
    assert msgpack.unpackb(data) == {**valid_fields(), "sig": b"\x01\x02"}
    assert list(msgpack.unpackb(data)) == [*valid_fields(), "sig"]
    assert data[0] == 0x8D  # fixmap of 13 entries
    assert b"\xc4\x08" + bytes(range(8)) in data  # payload is bin 8, not str


def test_a_keyframe_has_nil_base_and_no_sig_key_when_unsigned() -> None:
    frame = Frame(kind="key", seq=0, base=None, codec=Spec("raw"), n=1, payload=bytes(4))
    fields = msgpack.unpackb(encode_envelope(make_envelope(frame=frame)))
    assert fields["base"] is None
    assert fields["codec"] == {"name": "raw", "params": {}}
    assert "sig" not in fields


ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.é", min_size=1, max_size=20)
params = st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
    st.one_of(
        st.booleans(),
        st.integers(-MAX_INT - 1, MAX_INT),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=64),
    ),
    max_size=4,
)
meta = st.dictionaries(
    st.text(min_size=1, max_size=32),
    st.one_of(
        st.integers(-MAX_INT - 1, MAX_INT),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=256),
    ),
    max_size=16,
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    seq = draw(st.integers(0, MAX_INT))
    kind = "key" if seq == 0 else draw(st.sampled_from(["key", "delta"]))
    base = None if kind == "key" else draw(st.integers(0, seq - 1))
    frame = Frame(
        kind=kind,  # type: ignore[arg-type]
        seq=seq,
        base=base,
        codec=Spec(draw(st.sampled_from(["raw", "topk", "x-9"])), draw(params)),
        n=draw(st.integers(0, MAX_N)),
        payload=draw(st.binary(max_size=64)),
    )
    return Envelope(
        swarm=draw(ids),
        sender=draw(ids),
        round=draw(st.integers(0, MAX_INT)),
        frame=frame,
        model=draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True)),
        meta=draw(meta),
        sig=draw(st.none() | st.binary(max_size=512)),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=envelopes())
def test_every_valid_envelope_round_trips(env: Envelope) -> None:
    data = encode_envelope(env)
    assert decode_envelope(data, max_bytes=len(data)) == env
    assert decode_envelope(bytearray(data), max_bytes=len(data)) == env
    with pytest.raises(OversizedMessage):
        decode_envelope(data, max_bytes=len(data) - 1)


def test_size_limit_is_checked_before_anything_is_parsed() -> None:
    junk = b"\xc1" * 101
    with pytest.raises(OversizedMessage, match="envelope is 101 bytes; the limit is 100"):
        decode_envelope(junk, max_bytes=100)
    with pytest.raises(MalformedMessage):
        decode_envelope(junk, max_bytes=101)


def test_every_truncation_is_a_truncated_message() -> None:
    data = encode_envelope(make_envelope())
    for cut in range(1, len(data)):
        with pytest.raises(TruncatedMessage, match=f"{cut} bytes received"):
            decode_envelope(data[:cut], max_bytes=LIMIT)
    with pytest.raises(TruncatedMessage):
        decode_envelope(b"", max_bytes=LIMIT)


def test_trailing_bytes_and_non_maps_are_malformed() -> None:
    with pytest.raises(MalformedMessage, match="2 trailing bytes"):
        decode_envelope(pack(valid_fields()) + b"\x00\x00", max_bytes=LIMIT)
    with pytest.raises(
        MalformedMessage, match=r"top-level value is \[1, 2\]; expected a msgpack map"
    ):
        decode_envelope(pack([1, 2]), max_bytes=LIMIT)
    with pytest.raises(MalformedMessage, match="key b'v'; expected string keys"):
        decode_envelope(pack({b"v": 1}), max_bytes=LIMIT)
    with pytest.raises(MalformedMessage, match="envelope is a str; expected bytes"):
        decode_envelope("text", max_bytes=LIMIT)  # type: ignore[arg-type]


def test_version_is_checked_before_the_other_fields() -> None:
    with pytest.raises(VersionMismatch, match="field 'v' is 2; this peer speaks version 1"):
        decode_envelope(pack({"v": 2}), max_bytes=LIMIT)
    with pytest.raises(MalformedMessage, match="field 'v' is True; expected an integer"):
        decode_envelope(pack({**valid_fields(), "v": True}), max_bytes=LIMIT)


@pytest.mark.parametrize("name", list(valid_fields()))
def test_each_missing_field_is_named(name: str) -> None:
    fields = valid_fields()
    del fields[name]
    with pytest.raises(MalformedMessage, match=f"field '{name}' is missing"):
        decode_envelope(pack(fields), max_bytes=LIMIT)


BAD_VALUES = [
    ("v", "1", "'1'"),
    ("swarm", 7, "is a int; expected a string"),
    ("swarm", "a/b", "'a/b' contains '/'"),
    ("sender", "", "'' is empty"),
    ("sender", b"pi", "is a bytes"),
    ("round", True, "'round' is True; expected an integer from 0"),
    ("round", -1, "'round' is -1"),
    ("round", 2**63, f"'round' is {2**63}; expected an integer from 0 to {MAX_INT}"),
    ("round", 1.0, "'round' is 1.0"),
    ("seq", -5, "'seq' is -5"),
    ("seq", False, "'seq' is False"),
    ("n", MAX_N + 1, f"'n' is {MAX_N + 1}; expected an integer from 0 to {MAX_N}"),
    ("n", True, "'n' is True"),
    ("n", 2**64 - 1, f"'n' is {2**64 - 1}"),
    ("kind", "full", "'kind' is 'full'; expected 'key' or 'delta'"),
    ("kind", None, "'kind' is None"),
    ("base", 12, "'base' is 12; expected below seq 12"),
    ("base", "11", "'base' is '11'"),
    ("model", "0123456789ABCDEF", "'model' is '0123456789ABCDEF'; expected 16 lowercase hex"),
    ("model", "abc", "'model' is 'abc'"),
    ("codec", "topk", "'codec' is 'topk'; expected a map"),
    ("codec", {"name": "topk"}, "'codec.params' is None; expected a map"),
    ("codec", {"name": "9k", "params": {}}, "'codec.name' is '9k'"),
    ("codec", {"name": "topk", "params": {"f": [1]}}, "'codec.params.f' is [1]"),
    ("codec", {"name": "topk", "params": {"f": math.nan}}, "'codec.params.f' is nan"),
    ("codec", {"name": "t", "params": {"a b": 1}}, "'codec.params key' is 'a b'"),
    ("codec", {"name": "t", "params": {}, "x": 1}, "a map of 3 entries"),
    ("payload", "abc", "'payload' is 'abc'; expected bin"),
    ("payload", None, "'payload' is None"),
    ("meta", [], "'meta' is []; expected a map"),
    ("meta", {"ok": True}, "'meta.ok' is True; expected one of int64, finite float"),
    ("meta", {"loss": math.inf}, "'meta.loss' is inf"),
    ("meta", {"loss": 2**63}, f"'meta.loss' is {2**63}"),
    ("meta", {"s": "x" * 257}, "'meta.s' is 'xxxxx"),
    ("meta", {"": 1}, "'meta key' is ''"),
    ("meta", {str(i): i for i in range(17)}, "a map of 17 entries'; expected at most 16"),
    ("sig", b"x" * 513, "expected at most 512 bytes, got 513"),
    ("sig", "sig", "'sig' is 'sig'; expected bin"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES)
def test_each_bad_field_value_is_malformed_naming_field_and_value(
    name: str, value: object, message: str
) -> None:
    data = pack({**valid_fields(), name: value})
    with pytest.raises(MalformedMessage, match=re.escape(message)):
        decode_envelope(data, max_bytes=LIMIT)


def test_keyframes_must_have_nil_base() -> None:
    fields = {**valid_fields(), "kind": "key", "base": 3}
    with pytest.raises(MalformedMessage, match="'base' is 3; expected nil for a keyframe"):
        decode_envelope(pack(fields), max_bytes=LIMIT)


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(MalformedMessage) as info:
        decode_envelope(pack({**valid_fields(), "kind": "k" * 10_000}), max_bytes=LIMIT)
    assert len(str(info.value)) < 200
    assert "kkk..." in str(info.value)


def test_unknown_keys_are_ignored_and_nil_sig_means_unsigned() -> None:
    data = pack({**valid_fields(), "future": [1, 2], "sig": None})
    assert decode_envelope(data, max_bytes=LIMIT) == make_envelope()


def test_ext_types_are_refused() -> None:
    data = pack({**valid_fields(), "payload": msgpack.ExtType(1, b"abc")})
    with pytest.raises(MalformedMessage, match="not valid msgpack"):
        decode_envelope(data, max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"round": -1}, "'round' is -1"),
        ({"swarm": "a/b"}, "contains '/'"),
        ({"meta": {"flag": True}}, "'meta.flag' is True"),
        ({"model": "x"}, "'model' is 'x'"),
    ],
)
def test_encoding_refuses_what_a_receiver_would_reject(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        encode_envelope(make_envelope(**changes))


def test_max_bytes_must_be_a_positive_int() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="max_bytes"):
            decode_envelope(b"\x80", max_bytes=bad)  # type: ignore[arg-type]


# The worked example of docs/protocol.md: its hex must decode to the envelope the doc describes.
DOC = Path(__file__).parents[2] / "docs" / "protocol.md"


def doc_example_bytes() -> bytes:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- example-envelope -->\s*```text\n(.*?)```", text, re.DOTALL)
    assert block is not None, "docs/protocol.md lost its example-envelope block"
    hex_digits = re.sub(r"^[0-9a-f]{4}:|\s", "", block.group(1), flags=re.MULTILINE)
    return bytes.fromhex(hex_digits)


def doc_example_envelope() -> Envelope:
    payload = struct.pack("<IIff", 0, 3, 1.5, -1.0)
    frame = Frame(
        kind="delta", seq=5, base=4, codec=Spec("topk", {"fraction": 0.5}), n=4, payload=payload
    )
    return Envelope(
        swarm="lab",
        sender="pi-07",
        round=5,
        frame=frame,
        model=fingerprint([("w", (4,), "float32")]),
        meta={"loss": 0.25, "samples": 32},
    )


def test_the_documented_example_decodes_to_what_the_doc_says() -> None:
    data = doc_example_bytes()
    assert decode_envelope(data, max_bytes=1024) == doc_example_envelope()
    assert encode_envelope(doc_example_envelope()) == data
    assert len(data) == 180
    assert doc_example_envelope().model == "673efcb05d1b4db7"
    chunks = split(data, max_payload=86, message_id=5)
    assert [len(c) for c in chunks] == [86, 86, 74]
    text = DOC.read_text(encoding="utf-8")
    for chunk in chunks:
        head = chunk[:22].hex()
        spaced = " ".join(
            [head[:2], head[2:4], head[4:20], *(head[i : i + 8] for i in (20, 28, 36))]
        )
        assert spaced in text


def test_errors_are_protocol_errors_with_stable_reasons() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_envelope(b"\x81", max_bytes=10)
    assert info.value.reason == "truncated_message"
