"""Receiver-side checks that need context, and :func:`accept`, the daemon's one entry point.

The order is that of docs/protocol.md, section 9: size limit, version and field types
(:func:`decode_envelope`); the signature, when the receiver holds a trust list
(:func:`protocol.envelope.verify_envelope`); then swarm, sender, fingerprint, codec, lengths
(:func:`check_envelope`); then values finite, seq newer than the last, delta base known (the
receiver's ``apply``, which decodes the payload before it updates anything). Each failure is a
ProtocolError subclass; nothing changes state until every check before ``apply`` has passed.

>>> from protocol.frame import Frame
>>> from protocol.spec import Spec
>>> expected = Expectations(swarm="lab", model="0123456789abcdef", senders=frozenset({"a"}),
...                         n_params=2, max_bytes=1024)
>>> frame = Frame(kind="key", seq=0, base=None, codec=Spec("raw"), n=2, payload=bytes(8))
>>> env = Envelope(swarm="lab", sender="b", round=0, frame=frame, model="0123456789abcdef")
>>> check_envelope(env, expected)
Traceback (most recent call last):
...
protocol.errors.UnknownSender: envelope from 'b', which is not an expected in-neighbour ...
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final, Protocol

from protocol._fields import short
from protocol.codecs import Codec, codec_from_spec
from protocol.envelope import MAX_N, Envelope, decode_envelope, verify_envelope
from protocol.errors import (
    ConfigError,
    FingerprintMismatch,
    InconsistentLength,
    UnknownCodec,
    UnknownSender,
    WrongSwarm,
)
from protocol.fingerprint import FINGERPRINT_HEX
from protocol.frame import Frame
from protocol.signing import Trust
from protocol.spec import Param, Spec
from protocol.topics import check_id
from protocol.types import PeerId, Vector

__all__ = ["Expectations", "FrameSink", "accept", "check_envelope", "codec_for"]

_CODEC_CACHE: Final = 64


@dataclass(frozen=True, kw_only=True)
class Expectations:
    """What a receiver knows before any message arrives."""

    swarm: str
    model: str
    """Our own fingerprint (:func:`protocol.fingerprint.fingerprint`)."""
    senders: frozenset[PeerId]
    """Expected in-neighbours; envelopes from anyone else are dropped."""
    n_params: int
    """Our parameter count; every frame's ``n`` must equal it."""
    max_bytes: int
    """Largest envelope accepted, after chunk reassembly."""
    trust: Trust | None = None
    """Signed frames are checked against it (and unsigned ones refused if it says so); None:
    signatures are neither required nor checked."""

    def __post_init__(self) -> None:
        check_id(self.swarm, what="swarm")
        for peer in sorted(self.senders):
            check_id(peer, what="sender")
        model = self.model
        if len(model) != FINGERPRINT_HEX or model.strip("0123456789abcdef"):
            raise ConfigError(f"model {model!r} is invalid; expected 16 lowercase hex digits")
        _check_count("n_params", self.n_params, hi=MAX_N)
        _check_count("max_bytes", self.max_bytes, hi=2**32 - 1)


def _check_count(name: str, value: int, *, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ConfigError(f"{name} {value!r} is invalid; expected an int from 1 to {hi}")


class FrameSink(Protocol):
    """What :func:`accept` hands a checked frame to (``protocol.choco.ChocoReceiver``)."""

    def apply(self, sender: PeerId, frame: Frame) -> Vector: ...


@functools.lru_cache(maxsize=_CODEC_CACHE)
def _cached_codec(name: str, params: tuple[tuple[str, str, Param], ...]) -> Codec:
    return codec_from_spec(Spec(name, {k: v for k, _, v in params}), from_network=True)


def codec_for(spec: Spec) -> Codec:
    """The codec an envelope names, or UnknownCodec; built once per distinct spec."""
    # The type name is part of the key because True == 1 and 1.0 == 1 would share a cache entry.
    key = tuple((k, type(v).__name__, v) for k, v in sorted(spec.params.items()))
    try:
        return _cached_codec(spec.name, key)
    except (ConfigError, TypeError, ValueError, OverflowError) as exc:
        raise UnknownCodec(f"codec {short(str(spec))} unusable: {exc}") from exc


def check_envelope(env: Envelope, expected: Expectations, *, via: PeerId | None = None) -> None:
    """Raise the ProtocolError subclass for the first context check ``env`` fails.

    ``via`` is the peer level of the topic the envelope came on; when given, ``sender`` must
    match it, so a peer cannot speak for another on its own topic.
    """
    if env.swarm != expected.swarm:
        raise WrongSwarm(f"envelope for swarm {short(env.swarm)}; expected {expected.swarm!r}")
    if env.sender not in expected.senders:
        raise UnknownSender(
            f"envelope from {short(env.sender)}, which is not an expected in-neighbour of "
            f"swarm {expected.swarm!r}"
        )
    if via is not None and env.sender != via:
        raise UnknownSender(
            f"envelope from {env.sender!r} arrived on the topic of {via!r}; expected its own"
        )
    if env.model != expected.model:
        raise FingerprintMismatch(
            f"envelope from {env.sender!r} for model {short(env.model)}; "
            f"expected {expected.model!r}"
        )
    frame = env.frame
    codec = codec_for(frame.codec)
    if frame.n != expected.n_params:
        raise InconsistentLength(
            f"envelope from {env.sender!r} has n={frame.n} parameters; expected {expected.n_params}"
        )
    size = codec.payload_size(frame.n)
    if len(frame.payload) != size:
        raise InconsistentLength(
            f"envelope from {env.sender!r}: {frame.codec} payload of {len(frame.payload)} bytes; "
            f"expected {size} for n={frame.n}"
        )


def accept(
    data: bytes, expected: Expectations, receiver: FrameSink, *, via: PeerId | None = None
) -> tuple[Envelope, Vector]:
    """Decode, check and apply one envelope: what the daemon calls for every reassembled message.

    ``via`` is the topic's peer level (see :func:`check_envelope`). The signature, when
    ``expected.trust`` is set, is checked right after the msgpack structure is read: before the
    payload is decoded and before anything changes. Returns the envelope and what
    ``receiver.apply`` returns (the sender's updated public copy).
    """
    env = decode_envelope(data, max_bytes=expected.max_bytes)
    if expected.trust is not None:
        verify_envelope(data, env, expected.trust)
    check_envelope(env, expected, via=via)
    return env, receiver.apply(env.sender, env.frame)
