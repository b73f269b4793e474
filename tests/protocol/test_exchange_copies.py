"""The exchange path's kept buffers and single copies: the same bytes as before, fewer copies.

Each reference below is the straightforward computation the wire format describes (how the code
computed it before it kept buffers); the code must give the very same frames, envelopes and
public copies. The allocation bounds use tracemalloc, which sees Python bytes and numpy arrays
(torch's own tensors are not traced): a frame-sized copy more shows as 4 MB more.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import msgpack
import pytest
import torch

from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import Codec, RawCodec, codec_from_spec
from protocol.envelope import Envelope, decode_envelope, encode_envelope, sign_envelope
from protocol.errors import NonFiniteValues
from protocol.frame import Frame
from protocol.seeds import frame_seed
from protocol.signing import FRAME_DOMAIN, SigningKey, attach
from protocol.spec import Spec

KEY = SigningKey.from_seed(bytes(range(32)))
BIG = 1_000_000
"""A 1M-parameter model: 4 MB raw frames."""


def reference_map(env: Envelope) -> bytes:
    """The whole map packed at once, as envelopes were before they were joined in parts: written
    out here rather than taken from protocol.envelope, so that the oracle does not share the code
    it checks."""
    frame = env.frame
    fields: dict[str, object] = {
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
        fields["sig"] = env.sig
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


def envelope(payload: bytes, **meta: float | int) -> Envelope:
    frame = Frame(
        kind="delta",
        seq=5,
        base=4,
        codec=Spec("int8", {"block": 64}),
        n=len(payload),
        payload=payload,
    )
    return Envelope(
        swarm="lab", sender="p1", round=9, frame=frame, model="0123456789abcdef", meta=meta
    )


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65535, 65536, 4 * BIG])
def test_envelopes_are_byte_identical_to_packing_the_whole_map(size: int) -> None:
    env = envelope(bytes(range(256)) * (size // 256) + bytes(size % 256), loss=0.25, samples=32)
    unsigned = reference_map(env)
    assert encode_envelope(env) == unsigned
    assert sign_envelope(env, KEY) == attach(unsigned, KEY.sign(FRAME_DOMAIN, unsigned))
    with_sig = replace(env, sig=bytes(64))
    assert encode_envelope(with_sig) == reference_map(with_sig)


def reference_step(
    codec: Codec, x: torch.Tensor, x_hat: torch.Tensor, seq: int, *, seed: int, interval: int
) -> tuple[Frame, torch.Tensor]:
    """ChocoSender.step as the module docstring states it, every value a new tensor."""
    n = x.numel()
    payload = codec.to_bytes(x - x_hat, seed=frame_seed(seed, seq))
    new = x_hat + codec.from_bytes(payload, n).to(x_hat.dtype)
    if seq % interval == 0:
        raw = RawCodec()
        payload = raw.to_bytes(new)
        new = raw.from_bytes(payload, n).to(x_hat.dtype)
        return Frame(kind="key", seq=seq, base=None, codec=raw.spec, n=n, payload=payload), new
    frame = Frame(kind="delta", seq=seq, base=seq - 1, codec=codec.spec, n=n, payload=payload)
    return frame, new


@pytest.mark.parametrize(
    "spec", ["raw", "fp16", "int8:block=16", "topk:fraction=0.2", "randk:fraction=0.2", "sign"]
)
@pytest.mark.parametrize(
    ("x_dtype", "dtype"),
    [
        (torch.float32, torch.float32),
        (torch.float64, torch.float64),
        (torch.float32, torch.float64),
        (torch.float64, torch.float32),
    ],
)
def test_sender_frames_and_public_copy_match_the_reference_bit_for_bit(
    spec: str, x_dtype: torch.dtype, dtype: torch.dtype
) -> None:
    codec = codec_from_spec(spec)
    n, interval = 50, 4
    sender = ChocoSender(codec, n, keyframe_interval=interval, dtype=dtype)
    x_hat = torch.zeros(n, dtype=dtype)
    g = torch.Generator().manual_seed(3)
    receiver = ChocoReceiver(n, dtype=dtype)
    for seq in range(11):
        x = (torch.randn(n, generator=g, dtype=torch.float64) * 10 ** (seq % 3)).to(x_dtype)
        expected, x_hat = reference_step(codec, x, x_hat, seq, seed=7, interval=interval)
        frame = sender.step(x, seed=7)
        assert frame == expected
        assert sender.x_hat.dtype == dtype
        assert torch.equal(sender.x_hat, x_hat)
        copy = receiver.apply("a", frame)
        assert copy.dtype == dtype
        if dtype == torch.float32:
            assert torch.equal(copy, x_hat)


def test_a_sender_that_raises_keeps_its_public_copy_and_seq() -> None:
    sender = ChocoSender(codec_from_spec("sign"), 3, keyframe_interval=2)
    sender.step(torch.tensor([1.0, 2.0, 3.0]), seed=0)
    sender.step(torch.tensor([1.5, 2.0, 3.0]), seed=0)
    sender.x_hat = torch.tensor([3e38, -3e38, 0.0])
    before = sender.x_hat.clone()
    with pytest.raises(NonFiniteValues):
        sender.step(torch.tensor([1.0, float("nan"), 3.0]), seed=0)  # x - x_hat
    with pytest.raises(NonFiniteValues):
        # x - x_hat is finite, but x_hat + q overflows: the keyframe's bytes are not finite.
        sender.step(torch.tensor([3.4e38, -3.4e38, -3.4e38]), seed=0)
    assert torch.equal(sender.x_hat, before)
    assert sender.next_seq == 2


def test_a_resumed_sender_whose_public_copy_was_replaced_steps_from_it() -> None:
    sender = ChocoSender(RawCodec(), 2, keyframe_interval=10)
    sender.step(torch.ones(2), seed=0)
    sender.step(torch.ones(2), seed=0)
    sender.x_hat = torch.tensor([5.0, 6.0])
    frame = sender.step(torch.tensor([6.0, 8.0]), seed=0)
    assert RawCodec().from_bytes(frame.payload, 2).tolist() == [1.0, 2.0]
    assert sender.x_hat.tolist() == [6.0, 8.0]


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """The peak of Python and numpy allocations inside the block (call the result after it)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    peak = [0]
    try:
        yield lambda: peak[0]
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def big_sender() -> tuple[ChocoSender, torch.Tensor]:
    sender = ChocoSender(RawCodec(), BIG, keyframe_interval=10)
    x = torch.randn(BIG, generator=torch.Generator().manual_seed(0))
    sender.step(x, seed=0)  # the keyframe
    return sender, x


def test_a_raw_delta_step_makes_one_frame_sized_copy_its_payload() -> None:
    sender, x = big_sender()
    x += 0.5
    with traced() as peak:
        frame = sender.step(x, seed=0)
    assert frame.kind == "delta"
    # The payload (4 MB) and the finiteness mask (1 MB); decoding the payload again made 4 more.
    assert peak() < 4 * BIG * 1.4


def test_a_signed_4mb_envelope_is_built_with_one_copy_of_the_payload() -> None:
    sender, x = big_sender()
    frame = sender.step(x + 0.5, seed=0)
    env = Envelope(swarm="lab", sender="p1", round=1, frame=frame, model="0123456789abcdef")
    with traced() as peak:
        data = sign_envelope(env, KEY)
    assert len(data) > 4 * BIG
    # msgpack's buffer, its copy and the signed join made three.
    assert peak() < 4 * BIG * 1.1


def test_a_receiver_adds_a_raw_delta_without_copying_its_payload_first() -> None:
    key, x = big_sender()
    receiver = ChocoReceiver(BIG)
    held = RawCodec().to_bytes(key.x_hat)  # what its keyframe, seq 0, carried
    receiver.apply("a", Frame(kind="key", seq=0, base=None, codec=Spec("raw"), n=BIG, payload=held))
    delta = key.step(x + 0.25, seed=0)
    data = encode_envelope(
        Envelope(swarm="lab", sender="a", round=1, frame=delta, model="0123456789abcdef")
    )
    frame = decode_envelope(data, max_bytes=8 * BIG).frame
    with traced() as peak:
        copy = receiver.apply("a", frame)
    assert torch.equal(copy, key.x_hat)
    # The finiteness mask (1 MB) only; decoding into a tensor before adding made 4 MB more.
    assert peak() < 4 * BIG * 0.4
