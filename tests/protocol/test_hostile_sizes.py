"""What a small hostile message can make a receiver allocate: in proportion to its size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import protocol.codecs.dense as dense
from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec
from protocol.errors import OutOfRange
from protocol.frame import Frame
from protocol.spec import Spec


@pytest.mark.parametrize("n", [1, 8, 1000])
def test_an_int8_block_far_beyond_the_vector_decodes_without_padding_to_it(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = codec_from_spec("int8:block=16777216")
    x = torch.linspace(-3.0, 2.0, n)
    payload = codec.to_bytes(x)  # the sender pads (its own choice, its own memory)
    real_pad = dense.pad  # type: ignore[attr-defined]

    def bounded_pad(t: torch.Tensor, widths: tuple[int, int]) -> torch.Tensor:
        assert widths[1] <= 2 * n, f"decoding {len(payload)} bytes padded by {widths[1]}"
        return real_pad(t, widths)

    monkeypatch.setattr(dense, "pad", bounded_pad)
    decoded = codec_from_spec("int8:block=16777216", from_network=True).from_bytes(payload, n)
    monkeypatch.setattr(dense, "pad", real_pad)
    assert torch.equal(decoded, codec.compress(x)), "the same bits as the sender's own decode"


def test_a_finite_but_huge_value_is_refused_and_changes_nothing() -> None:
    """One flipped exponent bit: 0.01 becomes 3.4e36, which every finiteness check passes."""
    sender = ChocoSender(codec_from_spec("raw"), 4, keyframe_interval=10)
    receiver = ChocoReceiver(4)
    receiver.apply("a", sender.step(torch.full((4,), 0.01), seed=0))
    held = receiver.copy_of("a")
    assert held is not None
    before = held.clone()
    values = np.full(4, 0.01, dtype="<f4")
    values.view(np.uint32)[1] ^= 0x40000000  # the top exponent bit
    assert np.isfinite(values).all()
    assert abs(values[1]) > 1e36
    poisoned = Frame(kind="key", seq=1, base=None, codec=Spec("raw"), n=4, payload=values.tobytes())
    with pytest.raises(OutOfRange) as caught:
        receiver.apply("a", poisoned)
    assert caught.value.reason == "out_of_range"
    after = receiver.copy_of("a")
    assert after is not None
    assert torch.equal(after, before)
    assert receiver.last_seq("a") == 0
    delta = Frame(kind="delta", seq=1, base=0, codec=Spec("raw"), n=4, payload=values.tobytes())
    with pytest.raises(OutOfRange):
        receiver.apply("a", delta)
    assert receiver.last_seq("a") == 0
