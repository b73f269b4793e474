"""The v1 envelope: one frame of one sender, as a msgpack map.

:func:`encode_envelope` writes the keys ``v, swarm, sender, round, kind, seq, base, model, codec,
n, payload, meta`` and, when signed, ``sig``. :func:`decode_envelope` is the only way bytes from
the network become an :class:`Envelope`: size limit first, then msgpack with hostile-input limits,
then the version, then every field's type and bounds. It raises :class:`ProtocolError` subclasses
only, never pickles, and reads no ext types. docs/protocol.md describes every field and bound.

>>> frame = Frame(kind="key", seq=0, base=None, codec=Spec("raw"), n=1, payload=bytes(4))
>>> env = Envelope(swarm="lab", sender="a", round=0, frame=frame, model="0123456789abcdef")
>>> data = encode_envelope(env)
>>> decode_envelope(data, max_bytes=1024) == env
True
>>> decode_envelope(data[:-3], max_bytes=1024)
Traceback (most recent call last):
...
protocol.errors.TruncatedMessage: envelope: the bytes end inside a msgpack value (117 ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

import msgpack

from protocol._fields import (
    MAX_INT,
    MetaValue,
    get_bytes,
    get_codec,
    get_id,
    get_int,
    get_meta,
    get_model,
    require,
    short,
)
from protocol.errors import (
    BadSignature,
    ConfigError,
    MalformedMessage,
    OversizedMessage,
    ProtocolError,
    TruncatedMessage,
    Unsigned,
    VersionMismatch,
)
from protocol.frame import Frame
from protocol.signing import (
    FRAME_DOMAIN,
    SIG_BYTES,
    SigningKey,
    Trust,
    attach_parts,
    map_header,
)
from protocol.spec import Spec
from protocol.types import PeerId

__all__ = [
    "MAX_N",
    "MAX_SIG_BYTES",
    "VERSION",
    "Envelope",
    "MetaValue",
    "decode_envelope",
    "encode_envelope",
    "envelope_bound",
    "sign_envelope",
    "verify_envelope",
]

VERSION: Final = 1
MAX_N: Final = 2**31 - 1
"""Largest parameter count: sparse codecs index with uint32, and C peers count with int32."""
MAX_SIG_BYTES: Final = 512
_ENVELOPE_SLACK: Final = 64 * 1024


def envelope_bound(n: int) -> int:
    """The largest envelope any v1 codec makes for ``n`` parameters, with room to spare.

    The widest payload is a sparse one keeping every entry (8 bytes each); every other field
    together stays far below 64 KiB. A receiver that knows ``n`` refuses anything larger.

    >>> envelope_bound(1_000_000)
    8065536
    """
    return 8 * n + _ENVELOPE_SLACK


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """What travels on the wire: a frame plus who sent it, for which swarm, round and model."""

    v: int = VERSION
    swarm: str
    sender: PeerId
    round: int
    frame: Frame
    model: str
    """Fingerprint of the sender's parameter layout (:mod:`protocol.fingerprint`)."""
    meta: Mapping[str, MetaValue] = field(default_factory=dict)
    """Small per-round facts: ``loss``, ``samples``, ..."""
    sig: bytes | None = None


def _to_map(env: Envelope) -> dict[str, object]:
    frame = env.frame
    out: dict[str, object] = {
        "v": env.v,
        "swarm": env.swarm,
        "sender": env.sender,
        "round": env.round,
        "kind": frame.kind,
        "seq": frame.seq,
        "base": frame.base,
        "model": env.model,
        "codec": {"name": frame.codec.name, "params": dict(frame.codec.params)},
        "n": frame.n,
        "payload": frame.payload,
        "meta": dict(env.meta),
    }
    if env.sig is not None:
        out["sig"] = env.sig
    return out


def encode_envelope(env: Envelope) -> bytes:
    """Serialise ``env``; ConfigError if a receiver would reject one of its fields."""
    return b"".join(_encoded_parts(env))


def sign_envelope(env: Envelope, key: SigningKey) -> bytes:
    """``env`` encoded without ``sig``, then signed (:mod:`protocol.signing` gives the bytes).

    The payload is hashed and copied in place: the signed message is the only frame-sized
    buffer this makes, byte for byte what signing the joined unsigned message would give.
    """
    parts = _encoded_parts(replace(env, sig=None))
    return attach_parts(parts, key.sign(FRAME_DOMAIN, *parts))


def _encoded_parts(env: Envelope) -> tuple[bytes, bytes, bytes]:
    """``env``'s msgpack map in three parts: up to the payload's bin header, the payload, the
    rest. Joined, they are ``msgpack.packb`` of the map (msgpack values concatenate), without
    copying the payload into msgpack's buffer and out again."""
    fields = _to_map(env)
    try:
        _from_map(fields)
    except ProtocolError as exc:
        raise ConfigError(f"refusing to encode an invalid envelope: {exc}") from exc
    payload = env.frame.payload
    head: list[bytes] = [map_header(len(fields))]
    tail: list[bytes] = []
    into = head
    for key, value in fields.items():
        if key == "payload":
            head += [_pack("payload"), _bin_header(len(payload))]
            into = tail
        else:
            into += [_pack(key), _pack(value)]
    return b"".join(head), payload, b"".join(tail)


def _pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _bin_header(size: int) -> bytes:
    """msgpack's shortest bin header for ``size`` bytes, as ``packb`` writes it.

    >>> [_bin_header(n)[:1].hex() for n in (0, 256, 65536)]
    ['c4', 'c5', 'c6']
    """
    if size < 2**8:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 2**16:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def verify_envelope(data: bytes, env: Envelope, trust: Trust) -> None:
    """Check the signature of ``env``, decoded from ``data``, before anything uses its payload.

    Unsigned when signatures are required and ``env`` has none; UnknownSender when its sender
    has no trusted key; BadSignature when the signature is misplaced or wrong.
    """
    if env.sig is None:
        if trust.required:
            raise Unsigned(f"envelope from {env.sender!r} is unsigned; signatures are required")
        return
    if len(env.sig) != SIG_BYTES:
        raise BadSignature(
            f"envelope from {env.sender!r}: signature of {len(env.sig)} bytes; expected {SIG_BYTES}"
        )
    trust.verify_signed(env.sender, FRAME_DOMAIN, data)


def _unpack(data: bytes, max_bytes: int) -> object:
    # The length limits stop a hostile length prefix from reserving memory the message cannot fill.
    limits = {f"max_{kind}_len": max_bytes for kind in ("bin", "str", "array", "map")}
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=True, max_ext_len=0, use_list=True, **limits
        )
    except msgpack.ExtraData as exc:
        raise MalformedMessage(
            f"envelope: {len(exc.extra)} trailing bytes after the first value; expected exactly "
            "one msgpack map"
        ) from exc
    except ValueError as exc:
        if "incomplete input" in str(exc):
            raise TruncatedMessage(
                f"envelope: the bytes end inside a msgpack value ({len(data)} bytes received)"
            ) from exc
        raise MalformedMessage(f"envelope: not valid msgpack ({exc}); expected a v1 map") from exc
    except Exception as exc:
        # Whatever else the unpacker raises on hostile bytes, the message is unusable, and the
        # caller must see a ProtocolError, never a crash.
        raise MalformedMessage(f"envelope: not valid msgpack ({exc!r}); expected a map") from exc


def _check_version(fields: Mapping[str, object]) -> None:
    v = get_int(fields, "v", hi=MAX_INT)
    if v != VERSION:
        raise VersionMismatch(f"envelope: field 'v' is {v}; this peer speaks version {VERSION}")


def _frame(fields: Mapping[str, object]) -> Frame:
    kind = require(fields, "kind")
    seq = get_int(fields, "seq", hi=MAX_INT)
    base = require(fields, "base")
    if kind == "key":
        if base is not None:
            raise MalformedMessage(
                f"envelope: field 'base' is {short(base)}; expected nil for a keyframe"
            )
        frame_base: int | None = None
    elif kind == "delta":
        frame_base = get_int(fields, "base", hi=MAX_INT)
        if frame_base >= seq:
            raise MalformedMessage(
                f"envelope: field 'base' is {frame_base}; expected below seq {seq} for a delta"
            )
    else:
        raise MalformedMessage(
            f"envelope: field 'kind' is {short(kind)}; expected 'key' or 'delta'"
        )
    codec: Spec = get_codec(fields, "codec")
    n = get_int(fields, "n", hi=MAX_N)
    payload = get_bytes(fields, "payload")
    return Frame(kind=kind, seq=seq, base=frame_base, codec=codec, n=n, payload=payload)


def _from_map(fields: object) -> Envelope:
    if not isinstance(fields, dict):
        raise MalformedMessage(
            f"envelope: top-level value is {short(fields)}; expected a msgpack map"
        )
    bad_keys = [k for k in fields if not isinstance(k, str)]
    if bad_keys:
        raise MalformedMessage(f"envelope: key {short(bad_keys[0])}; expected string keys")
    _check_version(fields)
    sig = fields.get("sig")
    if sig is not None:
        sig = get_bytes(fields, "sig", max_len=MAX_SIG_BYTES)
    return Envelope(
        swarm=get_id(fields, "swarm"),
        sender=get_id(fields, "sender"),
        round=get_int(fields, "round", hi=MAX_INT),
        frame=_frame(fields),
        model=get_model(fields, "model"),
        meta=get_meta(fields, "meta"),
        sig=sig,
    )


def decode_envelope(data: bytes | bytearray | memoryview, *, max_bytes: int) -> Envelope:
    """Parse and check one envelope from the network; only ProtocolError subclasses escape."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ConfigError(f"max_bytes {max_bytes!r} is invalid; expected a positive int")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"envelope is a {type(data).__name__}; expected bytes")
    if len(data) > max_bytes:
        raise OversizedMessage(f"envelope is {len(data)} bytes; the limit is {max_bytes}")
    return _from_map(_unpack(bytes(data), max_bytes))
