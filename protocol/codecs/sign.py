"""``sign``: one bit per entry and one scale, CHOCO's sign+norm compression."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from protocol.codecs._common import LE_F32, as_f32, as_f32_1d, check_finite, check_payload
from protocol.codecs.base import Seeds
from protocol.spec import Spec
from protocol.types import Vector

__all__ = ["SignCodec"]


@dataclass(frozen=True)
class SignCodec:
    """``sign``: ``Q(x) = (||x||_1 / n) * sign(x)``, with sign(0) taken as +1.

    The scale ``s = ||x||_1 / n`` is summed in float64 and rounded once to fp32. The decoded value
    is ``-s`` where the bit is 1 and ``+s`` where it is 0 (the bit is x_i < 0, as in IEEE's sign
    bit; -0.0 counts as positive).

    Payload (4 + ceil(n / 8) bytes): the scale as binary32 little-endian; then the n bits packed
    LSB-first: entry i is bit ``i % 8`` (value ``1 << (i % 8)``) of byte ``4 + i // 8``. Writers
    set the unused high bits of the last byte to 0; readers ignore them.

    >>> codec = SignCodec()
    >>> codec.compress(torch.tensor([3.0, -1.0, 0.0, -4.0]))
    tensor([ 2., -2.,  2., -2.])
    >>> codec.to_bytes(torch.tensor([3.0, -1.0, 0.0, -4.0])).hex()
    '000000400a'
    """

    @property
    def spec(self) -> Spec:
        return Spec("sign")

    def payload_size(self, n: int) -> int:
        return 4 + math.ceil(n / 8)

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        x32 = as_f32(x)
        return _signs(x32 < 0, _scale(x32).unsqueeze(-1)).to(x.dtype)

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        x32 = as_f32_1d(x)
        scale = _scale(x32).numpy().astype(LE_F32).reshape(1)
        bits = np.packbits((x32 < 0).numpy(), bitorder="little")
        return scale.tobytes() + bits.tobytes()

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        check_payload(payload, n, self.payload_size(n), "sign")
        scale = torch.from_numpy(np.frombuffer(payload, dtype=LE_F32, count=1).copy())
        check_finite(scale, "sign scale")
        packed = np.frombuffer(payload, dtype=np.uint8, offset=4)
        negative = torch.from_numpy(np.unpackbits(packed, count=n, bitorder="little"))
        return _signs(negative, scale)


def _signs(negative: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``-scale`` where negative, else ``scale``: multiplying by +-1 is exact, and much faster
    than torch.where with a broadcast scale."""
    return negative.to(torch.float32).mul_(-2.0).add_(1.0).mul_(scale)


def _scale(x32: torch.Tensor) -> torch.Tensor:
    """``||x||_1 / n`` per row, accumulated in float64 so batch and row sums round alike."""
    n = x32.shape[-1]
    total = x32.abs().sum(dim=-1, dtype=torch.float64)
    return (total / max(n, 1)).to(torch.float32)
