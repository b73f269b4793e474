"""Presence payloads: plain ``online``/``offline``, or a signed map that no one else can forge.

A signed presence is the msgpack map ``{"v": 1, "swarm": S, "sender": P, "state": "online" |
"offline", "epoch": E}`` signed as :mod:`protocol.signing` describes (domain
``rumor/v1/presence``). ``epoch`` is chosen by the sender for each connection (microseconds since
the Unix epoch, increasing): the ``online`` it publishes and the ``offline`` it leaves as its will
carry the same epoch, and a receiver believes a presence only if its ``(epoch, state)`` comes after
the last one it believed from that peer (``offline`` after ``online`` within an epoch). So an old
signed ``offline`` replayed later announces nothing.

A connected peer outside its availability window says ``paused`` (unsigned: the bytes ``paused``;
signed: state ``"paused"``): it stays connected and in the membership, but trains and publishes no
frames, so no one waits for it. Within one epoch a peer may go paused and back many times: each
change carries a larger ``seq`` (an optional key, 0 when absent), and a signed presence is ordered
by ``(epoch, offline, seq)``, so the will's ``offline`` still comes last.

>>> from protocol.signing import SigningKey, Trust
>>> key = SigningKey.from_seed(bytes(32))
>>> data = encode_presence(swarm="lab", sender="a", online=True, epoch=7, key=key)
>>> decode_presence(data, swarm="lab", peer="a", trust=Trust({"a": key.public_bytes()}))
PresenceState(online=True, epoch=7, paused=False, seq=0)
>>> decode_presence(b"offline", swarm="lab", peer="a", trust=None)
PresenceState(online=False, epoch=None, paused=False, seq=0)
>>> data = encode_presence(swarm="lab", sender="a", online=True, epoch=7, key=key, paused=True)
>>> decode_presence(data, swarm="lab", peer="a", trust=Trust({"a": key.public_bytes()})).paused
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgpack

from protocol._fields import MAX_INT, get_id, get_int, require, short
from protocol.errors import (
    MalformedMessage,
    OversizedMessage,
    UnknownSender,
    Unsigned,
    VersionMismatch,
    WrongSwarm,
)
from protocol.signing import PRESENCE_DOMAIN, SigningKey, Trust, attach, detach
from protocol.types import PeerId

__all__ = [
    "MAX_PRESENCE_BYTES",
    "OFFLINE",
    "ONLINE",
    "PAUSED",
    "PresenceState",
    "decode_presence",
    "encode_presence",
]

ONLINE: Final = b"online"
OFFLINE: Final = b"offline"
PAUSED: Final = b"paused"
MAX_PRESENCE_BYTES: Final = 512


@dataclass(frozen=True)
class PresenceState:
    online: bool
    epoch: int | None
    """The sender's connection epoch; None for an unsigned presence."""
    paused: bool = False
    """Connected but outside its availability window: not training, not to be waited for."""
    seq: int = 0
    """Orders the sender's changes between online and paused within one epoch."""

    def after(self, other: PresenceState | None) -> bool:
        """Whether this presence is newer than ``other`` (signed ones are ordered by epoch)."""
        if other is None or self.epoch is None or other.epoch is None:
            return True
        return (self.epoch, not self.online, self.seq) > (other.epoch, not other.online, other.seq)


def encode_presence(
    *,
    swarm: str,
    sender: PeerId,
    online: bool,
    epoch: int,
    key: SigningKey | None,
    paused: bool = False,
    seq: int = 0,
) -> bytes:
    """The presence payload; plain ``online``/``paused``/``offline`` when ``key`` is None.
    ``paused`` matters only when ``online``."""
    state = ("paused" if paused else "online") if online else "offline"
    if key is None:
        return state.encode()
    fields: dict[str, object] = {
        "v": 1,
        "swarm": swarm,
        "sender": sender,
        "state": state,
        "epoch": epoch,
    }
    if seq:
        fields["seq"] = seq
    unsigned: bytes = msgpack.packb(fields, use_bin_type=True)
    return attach(unsigned, key.sign(PRESENCE_DOMAIN, unsigned))


def decode_presence(data: bytes, *, swarm: str, peer: PeerId, trust: Trust | None) -> PresenceState:
    """Check a presence payload from ``peer``'s presence topic; ProtocolError if unusable.

    The signature is checked (when ``trust`` is given) before the map is decoded.
    """
    if data in (ONLINE, OFFLINE, PAUSED):
        if trust is not None and trust.required:
            raise Unsigned(f"presence of {peer!r} is unsigned; signatures are required")
        return PresenceState(online=data != OFFLINE, epoch=None, paused=data == PAUSED)
    if len(data) > MAX_PRESENCE_BYTES:
        raise OversizedMessage(f"presence of {len(data)} bytes; the limit is {MAX_PRESENCE_BYTES}")
    unsigned, _ = detach(data)
    if trust is None:
        # Nothing is verified, so the epoch is anyone's claim: it must not order anything.
        state = _fields(unsigned, swarm=swarm, peer=peer)
        return PresenceState(online=state.online, epoch=None, paused=state.paused)
    trust.verify_signed(peer, PRESENCE_DOMAIN, data)
    return _fields(unsigned, swarm=swarm, peer=peer)


def _fields(unsigned: bytes, *, swarm: str, peer: PeerId) -> PresenceState:
    try:
        fields = msgpack.unpackb(unsigned, raw=False, max_ext_len=0, strict_map_key=True)
    except Exception as exc:
        raise MalformedMessage(f"presence of {peer!r}: not valid msgpack ({exc!r})") from exc
    if not isinstance(fields, dict):
        raise MalformedMessage(f"presence of {peer!r} is {short(fields)}; expected a map")
    if get_int(fields, "v", hi=MAX_INT) != 1:
        raise VersionMismatch(f"presence of {peer!r}: field 'v' is not 1")
    if get_id(fields, "swarm") != swarm:
        raise WrongSwarm(f"presence of {peer!r} names swarm {short(fields['swarm'])}")
    if get_id(fields, "sender") != peer:
        raise UnknownSender(
            f"presence on the topic of {peer!r} names {short(fields['sender'])}; expected its own"
        )
    state = require(fields, "state")
    if state not in ("online", "offline", "paused"):
        raise MalformedMessage(f"presence of {peer!r}: state {short(state)}")
    seq = get_int(fields, "seq", hi=MAX_INT) if "seq" in fields else 0
    return PresenceState(
        online=state != "offline",
        epoch=get_int(fields, "epoch", hi=MAX_INT),
        paused=state == "paused",
        seq=seq,
    )
