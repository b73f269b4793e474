"""Dense codecs: every parameter travels, at full (``raw``), half (``fp16``) or 8-bit precision."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch.nn.functional import pad

from protocol.codec_names import check_block
from protocol.codecs._common import (
    LE_F32,
    as_f32,
    as_f32_1d,
    check_finite,
    check_finite_array,
    check_payload,
    check_shape,
    f32_tensor,
)
from protocol.codecs.base import Seeds
from protocol.spec import Spec
from protocol.types import Vector

__all__ = ["Fp16Codec", "Int8Codec", "RawCodec"]

_FP16_MAX = 65504.0
_INT8_MAX = 127


@dataclass(frozen=True)
class RawCodec:
    """``raw``: the vector as it is, fp32.

    Payload (4n bytes): the n values as IEEE-754 binary32, little-endian, in index order.
    ``compress`` is the exact identity in any dtype (it returns a copy).

    >>> codec = RawCodec()
    >>> codec.to_bytes(torch.tensor([1.0, -2.0])).hex()
    '0000803f000000c0'
    """

    @property
    def spec(self) -> Spec:
        return Spec("raw")

    def payload_size(self, n: int) -> int:
        return 4 * n

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        return check_shape(x).clone()

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        return as_f32_1d(x).numpy().astype(LE_F32, copy=False).tobytes()

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        return f32_tensor(self.view(payload, n))

    def view(self, payload: bytes, n: int) -> npt.NDArray[np.float32]:
        """What :meth:`from_bytes` checks and decodes, as a read-only view of ``payload``.

        For adding the values somewhere without a frame-sized copy of them first.

        >>> RawCodec().view(bytes.fromhex("0000803f000000c0"), 2)
        array([ 1., -2.], dtype=float32)
        """
        check_payload(payload, n, self.payload_size(n), "raw")
        values = np.frombuffer(payload, dtype=LE_F32, count=n)
        check_finite_array(values, "raw")
        return values


@dataclass(frozen=True)
class Fp16Codec:
    """``fp16``: IEEE-754 binary16, values beyond +-65504 saturated to +-65504.

    Payload (2n bytes): the n values as binary16, little-endian, in index order, rounded to
    nearest (ties to even) from their fp32 value.

    >>> Fp16Codec().to_bytes(torch.tensor([1.0, -2.0, 1e6])).hex()
    '003c00c0ff7b'
    """

    @property
    def spec(self) -> Spec:
        return Spec("fp16")

    def payload_size(self, n: int) -> int:
        return 2 * n

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        return _to_half(as_f32(x)).to(torch.float32).to(x.dtype)

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        return _to_half(as_f32_1d(x)).numpy().astype("<f2", copy=False).tobytes()

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        check_payload(payload, n, self.payload_size(n), "fp16")
        half = np.frombuffer(payload, dtype="<f2", count=n).astype(np.float16)
        out = torch.from_numpy(half).to(torch.float32)  # torch converts ~10x faster than numpy
        check_finite(out, "fp16")
        return out


def _to_half(x32: torch.Tensor) -> torch.Tensor:
    return x32.clamp(-_FP16_MAX, _FP16_MAX).to(torch.float16)


@dataclass(frozen=True)
class Int8Codec:
    """``int8:block=B``: block-wise absmax quantisation to 8-bit integers.

    The vector is cut into ``m = ceil(n / B)`` blocks of B entries (the last may be shorter).
    Block b has scale ``s_b = max|x_i| / 127`` (fp32) and codes ``c_i = round(x_i / s_b)``
    (ties to even), clamped to [-127, 127]; a block of zeros has scale 0 and codes 0. The decoded
    value is ``c_i * s_b`` in fp32.

    Payload (4m + n bytes): the m scales as binary32 little-endian, block order; then the n codes
    as two's-complement int8, index order. Readers accept any finite scale and any code byte.

    >>> Int8Codec(block=2).compress(torch.tensor([1.0, -0.5, 0.0, 0.0]))
    tensor([ 1.0000, -0.5039,  0.0000,  0.0000])
    >>> Int8Codec(block=2).payload_size(5)
    17
    """

    block: int = 256

    def __post_init__(self) -> None:
        check_block("int8", self.block)

    @property
    def spec(self) -> Spec:
        return Spec("int8", {"block": self.block})

    def payload_size(self, n: int) -> int:
        return 4 * math.ceil(n / self.block) + n

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        codes, scales = self._encode(as_f32(x))
        return _int8_decode(codes, scales, x.shape[-1]).to(x.dtype)

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        codes, scales = self._encode(as_f32_1d(x))
        n = x.shape[-1]
        le_scales = scales.numpy().astype(LE_F32, copy=False)
        return le_scales.tobytes() + codes.reshape(-1)[:n].numpy().tobytes()

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        check_payload(payload, n, self.payload_size(n), "int8")
        m = math.ceil(n / self.block)
        scales = f32_tensor(np.frombuffer(payload, dtype=LE_F32, count=m))
        check_finite(scales, "int8 scale")
        raw = np.frombuffer(payload, dtype=np.int8, count=n, offset=4 * m)
        codes = torch.from_numpy(raw.copy())
        if m * self.block > 2 * n:
            # A block far longer than the vector: padding to m * block would allocate what the
            # sender chose, not what it sent. Scale each code by its block's scale instead (the
            # same float32 products, so the same bits).
            block_of = torch.arange(n) // self.block
            out = codes.to(torch.float32) * scales[block_of]
        else:
            codes = pad(codes, (0, m * self.block - n)).reshape(m, self.block)
            out = _int8_decode(codes, scales, n)
        check_finite(out, "int8")
        return out

    def _encode(self, x32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes [..., m, B] (int8, zero padded) and scales [..., m] (fp32) of [..., n]."""
        n = x32.shape[-1]
        m = math.ceil(n / self.block)
        blocks = pad(x32, (0, m * self.block - n)).reshape(*x32.shape[:-1], m, self.block)
        scales = blocks.abs().amax(dim=-1) / _INT8_MAX if m else blocks.new_zeros(blocks.shape[:-1])
        safe = torch.where(scales > 0, scales, torch.ones_like(scales))
        codes = torch.round(blocks / safe.unsqueeze(-1)).clamp_(-_INT8_MAX, _INT8_MAX)
        return codes.to(torch.int8), scales


def _int8_decode(codes: torch.Tensor, scales: torch.Tensor, n: int) -> torch.Tensor:
    """The one decoder both ``compress`` and ``from_bytes`` use, so they agree bit for bit."""
    values = codes.to(torch.float32) * scales.unsqueeze(-1)
    return values.reshape(*codes.shape[:-2], -1)[..., :n].contiguous()
