"""Signed frames and presence: what a receiver with a trust list accepts and what it refuses."""

import struct

import msgpack
import pytest
import torch

from protocol.choco import ChocoReceiver
from protocol.envelope import Envelope, encode_envelope, sign_envelope
from protocol.errors import (
    BadSignature,
    ProtocolError,
    ReplayedMessage,
    UnknownSender,
    Unsigned,
)
from protocol.frame import Frame
from protocol.presence import PresenceState, decode_presence, encode_presence
from protocol.signing import FRAME_DOMAIN, SigningKey, Trust, attach, detach
from protocol.spec import Spec
from protocol.validation import Expectations, accept

MODEL = "00112233445566ff"
N = 4
KEY_A = SigningKey.from_seed(bytes(range(32)))
KEY_B = SigningKey.from_seed(bytes(range(1, 33)))
TRUST = Trust({"a": KEY_A.public_bytes(), "b": KEY_B.public_bytes()})


def expected(trust: Trust | None = TRUST) -> Expectations:
    return Expectations(
        swarm="lab",
        model=MODEL,
        senders=frozenset({"a", "b", "c"}),
        n_params=N,
        max_bytes=4096,
        trust=trust,
    )


def envelope(seq: int = 0, values: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)) -> Envelope:
    payload = struct.pack(f"<{N}f", *values)
    frame = Frame(kind="key", seq=seq, base=None, codec=Spec("raw"), n=N, payload=payload)
    return Envelope(swarm="lab", sender="a", round=seq, frame=frame, model=MODEL)


def state(receiver: ChocoReceiver) -> tuple[int | None, list[float] | None]:
    copy = receiver.copy_of("a")
    return receiver.last_seq("a"), None if copy is None else copy.tolist()


def test_a_signed_frame_is_accepted_and_decodes_to_the_same_envelope() -> None:
    receiver = ChocoReceiver(N)
    data = sign_envelope(envelope(), KEY_A)
    env, copy = accept(data, expected(), receiver, via="a")
    assert env.sig == data[-64:]
    assert copy.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_the_signed_bytes_are_the_unsigned_ones_plus_a_trailing_sig_entry() -> None:
    unsigned = encode_envelope(envelope())
    signed = sign_envelope(envelope(), KEY_A)
    assert unsigned[0] == 0x8C
    assert signed[0] == 0x8D
    assert signed[1:-70] == unsigned[1:]
    assert signed[-70:-64] == b"\xa3sig\xc4\x40"
    assert detach(signed) == (unsigned, signed[-64:])


@pytest.mark.parametrize(
    ("name", "make", "error"),
    [
        ("unsigned", lambda: encode_envelope(envelope()), Unsigned),
        ("signed by b, sent as a", lambda: sign_envelope(envelope(), KEY_B), BadSignature),
        (
            "untrusted key",
            lambda: sign_envelope(envelope(), SigningKey.from_seed(bytes(32))),
            BadSignature,
        ),
    ],
)
def test_bad_frames_are_refused_and_change_nothing(
    name: str, make: object, error: type[ProtocolError]
) -> None:
    receiver = ChocoReceiver(N)
    accept(sign_envelope(envelope(0, (9.0, 9.0, 9.0, 9.0)), KEY_A), expected(), receiver)
    before = state(receiver)
    with pytest.raises(error):
        accept(make(), expected(), receiver, via="a")  # type: ignore[operator]
    assert state(receiver) == before, name


def test_every_single_byte_flip_of_a_signed_frame_is_refused() -> None:
    data = sign_envelope(envelope(1), KEY_A)
    for i in range(len(data)):
        receiver = ChocoReceiver(N)
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        with pytest.raises(ProtocolError):
            accept(bytes(flipped), expected(), receiver, via="a")
        assert state(receiver) == (None, None), f"byte {i}"


def test_a_replayed_signed_frame_is_refused() -> None:
    receiver = ChocoReceiver(N)
    data = sign_envelope(envelope(3), KEY_A)
    accept(data, expected(), receiver)
    before = state(receiver)
    with pytest.raises(ReplayedMessage):
        accept(data, expected(), receiver)
    assert state(receiver) == before


def test_a_sender_missing_from_the_trust_list_is_an_unknown_sender() -> None:
    env = Envelope(swarm="lab", sender="c", round=0, frame=envelope().frame, model=MODEL, sig=None)
    with pytest.raises(UnknownSender) as caught:
        accept(sign_envelope(env, KEY_A), expected(), ChocoReceiver(N), via="c")
    assert caught.value.reason == "unknown_sender"


def test_sig_anywhere_but_last_is_a_bad_signature() -> None:
    signed = sign_envelope(envelope(), KEY_A)
    fields = msgpack.unpackb(signed)
    moved = {"sig": fields.pop("sig"), **fields}
    with pytest.raises(BadSignature):
        accept(msgpack.packb(moved), expected(), ChocoReceiver(N))


def test_without_required_signatures_unsigned_frames_pass_and_signed_ones_are_checked() -> None:
    optional = Trust({"a": KEY_A.public_bytes()}, required=False)
    accept(encode_envelope(envelope(0)), expected(optional), ChocoReceiver(N))
    with pytest.raises(BadSignature):
        accept(sign_envelope(envelope(0), KEY_B), expected(optional), ChocoReceiver(N))


def test_reasons_are_stable() -> None:
    assert Unsigned("x").reason == "unsigned"
    assert BadSignature("x").reason == "bad_signature"


def test_a_frame_signature_is_not_a_presence_signature() -> None:
    unsigned = msgpack.packb(
        {"v": 1, "swarm": "lab", "sender": "a", "state": "offline", "epoch": 9}
    )
    forged = attach(unsigned, KEY_A.sign(FRAME_DOMAIN, unsigned))
    with pytest.raises(BadSignature):
        decode_presence(forged, swarm="lab", peer="a", trust=TRUST)


@pytest.mark.parametrize("online", [True, False])
def test_signed_presence_round_trips(online: bool) -> None:
    data = encode_presence(swarm="lab", sender="a", online=online, epoch=5, key=KEY_A)
    got = decode_presence(data, swarm="lab", peer="a", trust=TRUST)
    assert got == PresenceState(online=online, epoch=5)


def test_presence_forged_in_another_name_or_unsigned_is_refused() -> None:
    by_b = encode_presence(swarm="lab", sender="a", online=False, epoch=5, key=KEY_B)
    with pytest.raises(BadSignature):
        decode_presence(by_b, swarm="lab", peer="a", trust=TRUST)
    own = encode_presence(swarm="lab", sender="b", online=False, epoch=5, key=KEY_B)
    with pytest.raises(BadSignature):  # b's own message, replayed on a's topic
        decode_presence(own, swarm="lab", peer="a", trust=TRUST)
    with pytest.raises(Unsigned):
        decode_presence(b"offline", swarm="lab", peer="a", trust=TRUST)


def test_presence_order_offline_after_online_in_an_epoch_and_new_epochs_after_both() -> None:
    online5, offline5 = PresenceState(True, 5), PresenceState(False, 5)
    assert offline5.after(online5)
    assert not online5.after(offline5)
    assert PresenceState(True, 6).after(offline5)
    assert not offline5.after(offline5)


def test_unverified_presence_claims_no_epoch() -> None:
    data = encode_presence(swarm="lab", sender="a", online=True, epoch=2**62, key=KEY_B)
    assert decode_presence(data, swarm="lab", peer="a", trust=None).epoch is None


def test_the_signature_covers_the_payload_so_models_stay_bit_identical() -> None:
    receiver = ChocoReceiver(N)
    accept(sign_envelope(envelope(0), KEY_A), expected(), receiver)
    good = receiver.copy_of("a")
    assert good is not None
    kept = good.clone()
    data = bytearray(sign_envelope(envelope(1, (5.0, 6.0, 7.0, 8.0)), KEY_A))
    data[-80] ^= 0x40  # a payload byte, just before the sig entry and the meta map
    with pytest.raises(BadSignature):
        accept(bytes(data), expected(), receiver)
    after = receiver.copy_of("a")
    assert after is not None
    assert torch.equal(after, kept)
