import re
import struct

import pytest
import torch

from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope
from protocol.errors import (
    ConfigError,
    FingerprintMismatch,
    InconsistentLength,
    NonFiniteValues,
    ProtocolError,
    ReplayedMessage,
    UnknownBase,
    UnknownCodec,
    UnknownSender,
    WrongSwarm,
)
from protocol.frame import Frame
from protocol.spec import Spec
from protocol.validation import Expectations, accept, check_envelope, codec_for

MODEL = "00112233445566ff"
N = 6
EXPECTED = Expectations(
    swarm="lab", model=MODEL, senders=frozenset({"a", "b"}), n_params=N, max_bytes=4096
)


def wrap(frame: Frame, **changes: object) -> Envelope:
    args: dict[str, object] = {
        "swarm": "lab",
        "sender": "a",
        "round": frame.seq,
        "frame": frame,
        "model": MODEL,
    }
    args.update(changes)
    return Envelope(**args)  # type: ignore[arg-type]


def key_frame(values: list[float], seq: int = 0) -> Frame:
    payload = struct.pack(f"<{len(values)}f", *values)
    return Frame(kind="key", seq=seq, base=None, codec=Spec("raw"), n=len(values), payload=payload)


def test_accept_keeps_the_receiver_copy_equal_to_the_sender_public_copy() -> None:
    sender = ChocoSender(codec_from_spec("topk:fraction=0.5"), N, keyframe_interval=3)
    receiver = ChocoReceiver(N)
    gen = torch.Generator().manual_seed(0)
    for r in range(7):
        x = torch.randn(N, generator=gen)
        data = encode_envelope(wrap(sender.step(x, seed=1), round=r))
        env, copy = accept(data, EXPECTED, receiver)
        assert (env.round, env.frame.kind) == (r, "key" if r % 3 == 0 else "delta")
        assert torch.equal(copy, sender.x_hat)
    assert receiver.last_seq("a") == 6


REJECTS = [
    (wrap(key_frame([0.0] * N), swarm="other"), WrongSwarm, "swarm 'other'; expected 'lab'"),
    (wrap(key_frame([0.0] * N), swarm="x", sender="z"), WrongSwarm, "swarm 'x'"),
    (wrap(key_frame([0.0] * N), sender="mallory"), UnknownSender, "from 'mallory', which is not"),
    (
        wrap(key_frame([0.0] * N), model="ffffffffffffffff"),
        FingerprintMismatch,
        "model 'ffffffffffffffff'; expected '00112233445566ff'",
    ),
    (wrap(key_frame([0.0] * (N - 1))), InconsistentLength, "n=5 parameters; expected 6"),
    (
        wrap(Frame(kind="key", seq=0, base=None, codec=Spec("raw"), n=N, payload=bytes(4 * N + 1))),
        InconsistentLength,
        "raw payload of 25 bytes; expected 24 for n=6",
    ),
    (
        wrap(
            Frame(
                kind="delta",
                seq=1,
                base=0,
                codec=Spec("topk", {"fraction": 0.5}),
                n=N,
                payload=bytes(8),
            )
        ),
        InconsistentLength,
        "payload of 8 bytes; expected 24 for n=6",
    ),
    (
        wrap(Frame(kind="delta", seq=1, base=0, codec=Spec("zstd"), n=N, payload=b"")),
        UnknownCodec,
        "unknown codec 'zstd'",
    ),
    (
        wrap(
            Frame(
                kind="delta", seq=1, base=0, codec=Spec("topk", {"fraction": 2.0}), n=N, payload=b""
            )
        ),
        UnknownCodec,
        "fraction=2.0",
    ),
    (
        wrap(Frame(kind="delta", seq=1, base=0, codec=Spec("raw", {"level": 3}), n=N, payload=b"")),
        UnknownCodec,
        "unknown parameter(s) level",
    ),
    (
        wrap(key_frame([0.0, 1.0, float("nan"), 0.0, 0.0, 0.0], seq=1)),
        NonFiniteValues,
        "decoded value nan at index 2",
    ),
    (
        wrap(Frame(kind="delta", seq=4, base=3, codec=Spec("raw"), n=N, payload=bytes(4 * N))),
        UnknownBase,
        "applies to frame 3, but the receiver holds frame 0",
    ),
    (wrap(key_frame([9.0] * N, seq=0)), ReplayedMessage, "seq 0 from 'a' is not newer than 0"),
]


@pytest.mark.parametrize(("env", "error", "message"), REJECTS)
def test_each_reject_names_its_reason_and_leaves_the_receiver_untouched(
    env: Envelope, error: type[ProtocolError], message: str
) -> None:
    receiver = ChocoReceiver(N)
    accept(encode_envelope(wrap(key_frame([1.0] * N))), EXPECTED, receiver)
    with pytest.raises(error, match=re.escape(message)):
        accept(encode_envelope(env), EXPECTED, receiver)
    assert receiver.last_seq("a") == 0
    assert torch.equal(receiver.copy_of("a"), torch.ones(N))  # type: ignore[arg-type]
    assert receiver.senders == frozenset({"a"})


def test_context_checks_run_before_the_receiver_is_called() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def apply(self, sender: str, frame: Frame) -> torch.Tensor:
            self.calls.append(sender)
            return torch.zeros(frame.n)

    sink = Recorder()
    for env, _, _ in REJECTS[:10]:
        with pytest.raises(ProtocolError):
            accept(encode_envelope(env), EXPECTED, sink)
    assert sink.calls == []
    accept(encode_envelope(wrap(key_frame([1.0] * N), sender="b")), EXPECTED, sink)
    assert sink.calls == ["b"]


def test_a_lost_delta_is_skipped_until_the_next_keyframe() -> None:
    sender = ChocoSender(codec_from_spec("int8:block=4"), N, keyframe_interval=4)
    receiver = ChocoReceiver(N)
    frames = [
        encode_envelope(wrap(sender.step(torch.full((N,), float(i)), seed=0))) for i in range(6)
    ]
    accept(frames[0], EXPECTED, receiver)
    accept(frames[1], EXPECTED, receiver)
    # Frame 2 was lost: frame 3 names base 2, which the receiver does not hold.
    with pytest.raises(UnknownBase, match="applies to frame 2, but the receiver holds frame 1"):
        accept(frames[3], EXPECTED, receiver)
    _, copy = accept(frames[4], EXPECTED, receiver)  # keyframe: in sync again
    assert torch.equal(copy, torch.full((N,), 4.0))
    _, copy = accept(frames[5], EXPECTED, receiver)
    assert torch.equal(copy, sender.x_hat)


def test_a_sender_cannot_speak_on_another_peers_topic() -> None:
    data = encode_envelope(wrap(key_frame([1.0] * N), sender="b"))
    receiver = ChocoReceiver(N)
    with pytest.raises(UnknownSender, match="from 'b' arrived on the topic of 'a'"):
        accept(data, EXPECTED, receiver, via="a")
    assert receiver.senders == frozenset()
    env, _ = accept(data, EXPECTED, receiver, via="b")
    assert env.sender == "b"


def test_codec_cache_tells_true_from_one() -> None:
    assert codec_for(Spec("int8", {"block": 1})).payload_size(4) == 4 * 4 + 4
    with pytest.raises(UnknownCodec, match="block=True"):
        codec_for(Spec("int8", {"block": True}))


def test_check_envelope_passes_a_consistent_envelope() -> None:
    check_envelope(wrap(key_frame([0.5] * N), sender="b"), EXPECTED)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"swarm": "a/b"}, "swarm 'a/b' contains '/'"),
        ({"senders": frozenset({"ok", ""})}, "sender '' is empty"),
        ({"model": "ABCDEF0123456789"}, "model 'ABCDEF0123456789' is invalid"),
        ({"n_params": 0}, "n_params 0 is invalid"),
        ({"n_params": True}, "n_params True is invalid"),
        ({"n_params": 2**31}, "n_params 2147483648 is invalid"),
        ({"max_bytes": 0}, "max_bytes 0 is invalid"),
    ],
)
def test_expectations_refuse_bad_configuration(changes: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "swarm": "lab",
        "model": MODEL,
        "senders": frozenset({"a"}),
        "n_params": 3,
        "max_bytes": 99,
    }
    args.update(changes)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Expectations(**args)  # type: ignore[arg-type]
