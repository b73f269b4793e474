"""The receiving side with a trust list: forged, replayed and unsigned messages change nothing."""

from __future__ import annotations

import torch

from peer.runtime.inbound import Inbound
from peer.runtime.liveness import Liveness
from peer.runtime.rejections import Rejections
from peer.transport import Message
from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope, sign_envelope
from protocol.frame import Frame
from protocol.presence import encode_presence
from protocol.signing import SigningKey, Trust
from protocol.topics import topic
from protocol.validation import Expectations

N = 16
KEY_P1 = SigningKey.from_seed(bytes([1] * 32))
KEY_P2 = SigningKey.from_seed(bytes([2] * 32))
TRUST = Trust({"p1": KEY_P1.public_bytes(), "p2": KEY_P2.public_bytes()})
PRESENCE = topic("presence", swarm="s", peer="p1")


def _inbound(trust: Trust | None = TRUST) -> Inbound:
    expected = Expectations(
        swarm="s",
        model="ab" * 8,
        senders=frozenset({"p1", "p2"}),
        n_params=N,
        max_bytes=1 << 20,
        trust=trust,
    )
    return Inbound(
        me="p0",
        prefix="rumor",
        expected=expected,
        receiver=ChocoReceiver(N),
        liveness=Liveness(silence_timeout_s=60.0),
        rejections=Rejections(),
    )


def _frame_bytes(frame: Frame, *, round: int, key: SigningKey | None, sender: str = "p1") -> bytes:
    env = Envelope(swarm="s", sender=sender, round=round, frame=frame, model="ab" * 8)
    return encode_envelope(env) if key is None else sign_envelope(env, key)


def _presence(online: bool, epoch: int, key: SigningKey = KEY_P1) -> Message:
    data = encode_presence(swarm="s", sender="p1", online=online, epoch=epoch, key=key)
    return Message(topic=PRESENCE, payload=data)


def test_signed_presence_is_believed_and_an_old_offline_replayed_is_not() -> None:
    inbound = _inbound()
    inbound.handle(_presence(True, 5))
    assert inbound.liveness.alive("p1")
    inbound.handle(_presence(False, 4))  # the will of an earlier connection, replayed
    assert inbound.liveness.alive("p1")
    assert dict(inbound.rejections.counts) == {"replayed_message": 1}
    inbound.handle(_presence(False, 5))  # this connection's own offline
    assert not inbound.liveness.alive("p1")


def test_presence_in_a_peers_name_unsigned_or_signed_by_another_is_refused() -> None:
    inbound = _inbound()
    inbound.handle(_presence(True, 5))
    inbound.handle(Message(topic=PRESENCE, payload=b"offline"))
    inbound.handle(_presence(False, 9, key=KEY_P2))
    assert inbound.liveness.alive("p1")
    assert dict(inbound.rejections.counts) == {"unsigned": 1, "bad_signature": 1}


def test_phantoms_cannot_announce_themselves_when_signatures_are_required() -> None:
    inbound = _inbound()
    for i in range(50):
        phantom = topic("presence", swarm="s", peer=f"ghost{i}")
        inbound.handle(Message(topic=phantom, payload=b"online"))
    assert inbound.liveness.announced() == frozenset()
    assert dict(inbound.rejections.counts) == {"unsigned": 50}


def test_forged_frames_are_counted_per_reason_and_the_copy_stays_bit_identical() -> None:
    inbound = _inbound()
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    first = sender.step(torch.arange(N, dtype=torch.float32), seed=1)
    good = _frame_bytes(first, round=0, key=KEY_P1)
    key_topic = topic("key", swarm="s", peer="p1")
    inbound.handle(Message(topic=key_topic, payload=good))
    kept = inbound.receiver.copy_of("p1")
    assert kept is not None
    kept = kept.clone()
    forged = sender.step(torch.full((N,), 1e6), seed=1)
    flipped = bytearray(_frame_bytes(forged, round=1, key=KEY_P1))
    flipped[-90] ^= 0x40
    delta_topic = topic(forged.kind, swarm="s", peer="p1")
    attacks = [
        _frame_bytes(forged, round=1, key=None),  # unsigned
        _frame_bytes(forged, round=1, key=KEY_P2),  # p2's key, in p1's name
        bytes(flipped),  # one payload byte flipped
        _frame_bytes(first, round=5, key=KEY_P1),  # replayed: seq 0 again, other bytes
        good,  # the same message again (a retained keyframe re-delivered): a duplicate
    ]
    for data in attacks:
        inbound.handle(Message(topic=delta_topic, payload=data))
    assert dict(inbound.rejections.counts) == {
        "unsigned": 1,
        "bad_signature": 2,
        "replayed_message": 1,
    }
    assert dict(inbound.ignored.counts) == {"duplicate": 1}
    assert not inbound.has_round("p1", 1), "the replay's round 5 was not taken"
    now = inbound.receiver.copy_of("p1")
    assert now is not None
    assert torch.equal(now, kept)
    assert inbound.receiver.last_seq("p1") == 0


def test_an_unsigned_delta_with_an_unknown_base_is_not_hearing_from_the_sender() -> None:
    """Anyone can send it: it must not keep a silent (or hijacked) link looking alive."""
    inbound = _inbound(trust=None)
    frame = Frame(
        kind="delta",
        seq=7,
        base=6,
        codec=codec_from_spec("raw").spec,
        n=N,
        payload=bytes(4 * N),
    )
    data = _frame_bytes(frame, round=7, key=None)
    inbound.handle(Message(topic=topic("delta", swarm="s", peer="p1"), payload=data))
    assert dict(inbound.rejections.counts) == {"unknown_base": 1}
    assert not inbound.liveness.alive("p1")


def test_the_same_signed_presence_again_is_no_replay() -> None:
    """A re-subscription (after a reconnect) re-delivers the retained presence: not an attack."""
    inbound = _inbound()
    inbound.handle(_presence(True, 5))
    inbound.handle(_presence(True, 5))
    assert inbound.rejections.counts == {}
    assert inbound.liveness.alive("p1")
