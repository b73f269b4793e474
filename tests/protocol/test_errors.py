"""The error tree: what the counters, the logs and docs/protocol.md rely on.

Every ProtocolError subclass must have its own stable ``reason``, be raised by the receive path
it names (fed raw bytes, as a third-party peer would send them), say which value was wrong, and
sit where the tree drawn in ``protocol/errors.py`` puts it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

from protocol import errors
from protocol.choco import ChocoReceiver
from protocol.chunking import Reassembler
from protocol.envelope import Envelope, encode_envelope
from protocol.errors import ConfigError, ProtocolError, RumorError
from protocol.frame import Frame
from protocol.signing import FRAME_DOMAIN, SigningKey, Trust, attach
from protocol.spec import Spec
from protocol.validation import Expectations, accept

ROOT = Path(__file__).resolve().parents[2]
MODEL = "00112233445566ff"
N = 4
EXPECTED = Expectations(
    swarm="lab", model=MODEL, senders=frozenset({"a"}), n_params=N, max_bytes=4096
)

REASONS = {
    "MalformedMessage": "malformed_message",
    "TruncatedMessage": "truncated_message",
    "OversizedMessage": "oversized_message",
    "VersionMismatch": "version_mismatch",
    "WrongSwarm": "wrong_swarm",
    "UnknownSender": "unknown_sender",
    "FingerprintMismatch": "fingerprint_mismatch",
    "UnknownCodec": "unknown_codec",
    "InconsistentLength": "inconsistent_length",
    "NonFiniteValues": "non_finite_values",
    "ReplayedMessage": "replayed_message",
    "UnknownBase": "unknown_base",
    "BadChunk": "bad_chunk",
    "Unsigned": "unsigned",
    "BadSignature": "bad_signature",
    "OutOfRange": "out_of_range",
}
"""Pinned: these strings are counter keys in telemetry and names in docs/protocol.md."""


def protocol_error_classes() -> dict[str, type[ProtocolError]]:
    return {
        name: obj
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, ProtocolError) and obj is not ProtocolError
    }


def envelope_map(**changes: object) -> dict[str, object]:
    """A valid key envelope from ``a`` as a plain map, with ``changes`` applied."""
    payload = struct.pack(f"<{N}f", 1.0, 2.0, 3.0, 4.0)
    frame = Frame(kind="key", seq=3, base=None, codec=Spec("raw"), n=N, payload=payload)
    env = Envelope(swarm="lab", sender="a", round=3, frame=frame, model=MODEL)
    fields: dict[str, object] = msgpack.unpackb(encode_envelope(env))
    fields.update(changes)
    return fields


def packed(**changes: object) -> bytes:
    data: bytes = msgpack.packb(envelope_map(**changes), use_bin_type=True)
    return data


def receive(*messages: bytes) -> None:
    """Feed whole envelopes to a fresh receiver, as the daemon does."""
    receiver = ChocoReceiver(N)
    for data in messages:
        accept(data, EXPECTED, receiver, via="a")


KEY_A = SigningKey.from_seed(bytes(range(32)))
KEY_B = SigningKey.from_seed(bytes(range(1, 33)))


def receive_signed(*messages: bytes) -> None:
    """As :func:`receive`, for a receiver that requires signatures and trusts ``a``'s key."""
    expected = replace(EXPECTED, trust=Trust({"a": KEY_A.public_bytes()}))
    receiver = ChocoReceiver(N)
    for data in messages:
        accept(data, expected, receiver, via="a")


def signed(key: SigningKey) -> bytes:
    unsigned = packed()
    return attach(unsigned, key.sign(FRAME_DOMAIN, unsigned))


def reassemble(*packets: bytes) -> None:
    reassembler = Reassembler(max_pending_bytes=1 << 16, timeout_s=30.0)
    for packet in packets:
        reassembler.feed("a", packet)


NAN_PAYLOAD = struct.pack(f"<{N}f", 1.0, math.nan, 0.0, 0.0)
HUGE_PAYLOAD = struct.pack(f"<{N}f", 1.0, 3.4e36, 0.0, 0.0)
DELTA = {"kind": "delta", "base": 2, "seq": 3}

# class name -> (what triggers it through the receive path, text the message must contain)
TRIGGERS: dict[str, tuple[Callable[[], None], str]] = {
    "MalformedMessage": (lambda: receive(packed(round="five")), "'five'"),
    "TruncatedMessage": (lambda: receive(packed()[:-3]), "129 bytes"),
    "OversizedMessage": (lambda: receive(packed(pad="x" * 5000)), "5139 bytes; the limit is 4096"),
    "VersionMismatch": (lambda: receive(packed(v=7)), "'v' is 7"),
    "WrongSwarm": (lambda: receive(packed(swarm="other")), "'other'"),
    "UnknownSender": (lambda: receive(packed(sender="mallory")), "'mallory'"),
    "FingerprintMismatch": (lambda: receive(packed(model="f" * 16)), "ffffffffffffffff"),
    "UnknownCodec": (lambda: receive(packed(codec={"name": "bogus", "params": {}})), "bogus"),
    "InconsistentLength": (lambda: receive(packed(n=N + 1)), "n=5"),
    "NonFiniteValues": (lambda: receive(packed(payload=NAN_PAYLOAD)), "nan at index 1"),
    "ReplayedMessage": (lambda: receive(packed(), packed()), "seq 3"),
    "UnknownBase": (lambda: receive(packed(**DELTA)), "frame 2"),
    "BadChunk": (lambda: reassemble(bytes([0xC1, 1, 0])), "3 bytes"),
    "Unsigned": (lambda: receive_signed(packed()), "'a' is unsigned"),
    "BadSignature": (lambda: receive_signed(signed(KEY_B)), "signature of 'a'"),
    "OutOfRange": (lambda: receive(packed(payload=HUGE_PAYLOAD)), "magnitude 3.4e+36"),
}


def test_every_protocol_error_has_its_pinned_distinct_snake_case_reason() -> None:
    classes = protocol_error_classes()
    assert {name: cls("x").reason for name, cls in classes.items()} == REASONS
    assert len(set(REASONS.values())) == len(REASONS)
    for reason in REASONS.values():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", reason), reason


def test_every_protocol_error_is_triggered_by_the_path_it_names() -> None:
    assert set(TRIGGERS) == set(protocol_error_classes())


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_the_receive_path_raises_exactly_this_error_naming_the_value(name: str) -> None:
    trigger, named = TRIGGERS[name]
    with pytest.raises(ProtocolError) as info:
        trigger()
    assert type(info.value).__name__ == name, f"{name} expected, got {info.value!r}"
    assert named in str(info.value)
    assert info.value.reason == REASONS[name]


def _drawn_tree() -> dict[str, str]:
    """Class -> parent, from the tree drawn in the module docstring of protocol/errors.py."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^([\s│├└─]*)([A-Z][A-Za-z]+)\b", line)
        if match is None or not hasattr(errors, match[2]):
            continue
        depth = len(match[1])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[match[2]] = stack[-1][1]
        stack.append((depth, match[2]))
    return parents


def test_the_tree_in_the_docstring_is_the_class_tree() -> None:
    drawn = _drawn_tree()
    actual = {
        name: obj.__mro__[1].__name__
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, RumorError) and obj is not RumorError
    }
    assert drawn == actual
    assert set(drawn) | {"RumorError"} == set(errors.__all__)


def test_config_errors_are_value_errors_and_protocol_errors_are_not() -> None:
    # Callers catch ValueError for bad parameters; a hostile frame must not look like one.
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, RumorError)
    assert not issubclass(ProtocolError, ValueError)
    assert not issubclass(ConfigError, ProtocolError)


def test_docs_list_every_reason_the_receiver_counts() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text.split("## 9.", 1)[1].split("\n## ", 1)[0]
    missing = [n for n, r in REASONS.items() if f"`{n}` (`{r}`)" not in section]
    assert not missing, f"docs/protocol.md section 9 does not name {missing}"
