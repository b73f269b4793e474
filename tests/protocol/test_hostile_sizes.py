"""What a small hostile message can make a receiver allocate: in proportion to its size."""

from __future__ import annotations

import pytest
import torch

import protocol.codecs.dense as dense
from protocol.codecs import codec_from_spec


@pytest.mark.parametrize("n", [1, 8, 1000])
def test_an_int8_block_far_beyond_the_vector_decodes_without_padding_to_it(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = codec_from_spec("int8:block=16777216")
    x = torch.linspace(-3.0, 2.0, n)
    payload = codec.to_bytes(x)  # the sender pads (its own choice, its own memory)
    real_pad = dense.pad

    def bounded_pad(t: torch.Tensor, widths: tuple[int, int]) -> torch.Tensor:
        assert widths[1] <= 2 * n, f"decoding {len(payload)} bytes padded by {widths[1]}"
        return real_pad(t, widths)

    monkeypatch.setattr(dense, "pad", bounded_pad)
    decoded = codec_from_spec("int8:block=16777216", from_network=True).from_bytes(payload, n)
    monkeypatch.setattr(dense, "pad", real_pad)
    assert torch.equal(decoded, codec.compress(x)), "the same bits as the sender's own decode"
