"""Sparse codecs: a fraction of the entries travels, the rest decode to zero."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from protocol.codec_names import check_fraction
from protocol.codecs._common import (
    LE_F32,
    MASK64,
    as_f32,
    as_f32_1d,
    check_finite,
    check_payload,
    f32_tensor,
    row_seeds,
)
from protocol.codecs.base import Seeds
from protocol.errors import InconsistentLength
from protocol.spec import Spec
from protocol.types import Vector

__all__ = ["RandKCodec", "TopKCodec", "kept_count", "randk_indices"]

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def kept_count(fraction: float, n: int) -> int:
    """``k = max(1, ceil(fraction * n))`` (IEEE double), at most n; 0 when n is 0.

    >>> kept_count(0.01, 50_890), kept_count(0.5, 1), kept_count(0.3, 0)
    (509, 1, 0)
    """
    return min(n, max(1, math.ceil(fraction * n)))


@dataclass(frozen=True)
class TopKCodec:
    """``topk:fraction=F``: the ``k = max(1, ceil(F * n))`` entries of largest magnitude.

    Ties in magnitude are broken by numpy's argpartition, identically in ``compress`` and
    ``to_bytes``.

    Payload (8k bytes): the k indices as uint32 little-endian, ascending; then the k values as
    binary32 little-endian, in the same order. Readers accept indices in any order but reject an
    index >= n or a repeated index (InconsistentLength).

    >>> codec = TopKCodec(fraction=0.5)
    >>> codec.compress(torch.tensor([0.1, -3.0, 2.0, 0.5]))
    tensor([ 0., -3.,  2.,  0.])
    >>> codec.to_bytes(torch.tensor([0.1, -3.0, 2.0, 0.5])).hex()
    '0100000002000000000040c000000040'
    """

    fraction: float = 0.01

    def __post_init__(self) -> None:
        check_fraction("topk", self.fraction)

    @property
    def spec(self) -> Spec:
        return Spec("topk", {"fraction": self.fraction})

    def payload_size(self, n: int) -> int:
        return 8 * kept_count(self.fraction, n)

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        x32 = as_f32(x)
        index = self._select(x32)
        out = torch.zeros_like(x32).scatter_(-1, index, x32.gather(-1, index))
        return out.to(x.dtype)

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        x32 = as_f32_1d(x)
        index = self._select(x32).sort().values
        values = x32[index].numpy().astype(LE_F32, copy=False)
        return index.numpy().astype("<u4").tobytes() + values.tobytes()

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        check_payload(payload, n, self.payload_size(n), "topk")
        k = kept_count(self.fraction, n)
        index = np.frombuffer(payload, dtype="<u4", count=k).astype(np.int64)
        _check_indices(index, n)
        values = f32_tensor(np.frombuffer(payload, dtype=LE_F32, count=k, offset=4 * k))
        check_finite(values, "topk")
        out = torch.zeros(n, dtype=torch.float32)
        out[torch.from_numpy(index)] = values
        return out

    def _select(self, x32: torch.Tensor) -> torch.Tensor:
        """Indices [..., k] of the k largest magnitudes per row, in no particular order."""
        n = x32.shape[-1]
        k = kept_count(self.fraction, n)
        if k == n:
            return torch.arange(n, device=x32.device).expand(*x32.shape[:-1], n).contiguous()
        if x32.device.type != "cpu":
            return x32.abs().topk(k, dim=-1, sorted=False).indices
        # numpy's introselect is ~10x faster than torch.topk on CPU for k in the thousands.
        partitioned = np.argpartition(np.abs(x32.numpy()), n - k, axis=-1)
        return torch.from_numpy(np.ascontiguousarray(partitioned[..., n - k :]))


def _check_indices(index: npt.NDArray[np.int64], n: int) -> None:
    if index.size == 0:
        return
    top = int(index.max())
    if top >= n:
        raise InconsistentLength(f"topk: index {top} out of range; expected < n={n}")
    ordered = index if bool(np.all(index[1:] > index[:-1])) else np.sort(index)
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        raise InconsistentLength(
            f"topk: index {int(ordered[repeated[0]])} appears more than once; expected distinct"
        )


@dataclass(frozen=True)
class RandKCodec:
    """``randk:fraction=F``: ``k = max(1, ceil(F * n))`` entries chosen by a seed, one per stratum.

    The index range is cut into k strata ``[lo_j, hi_j)`` with ``lo_j = floor(j * n / k)`` and
    ``hi_j = floor((j + 1) * n / k)`` (exact integer division); stratum j keeps index
    ``lo_j + (z_j mod (hi_j - lo_j))`` where ``z_j`` is the (j+1)-th output of SplitMix64 seeded
    with the 64-bit seed: ``z_j = mix((seed + (j + 1) * 0x9E3779B97F4A7C15) mod 2**64)`` with
    ``mix(z) = z ^ z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
    z ^= z >> 31`` (all mod 2**64). Every entry is kept with probability ~k/n, indices come out
    ascending and distinct, and the subset depends on (seed, n, k) only. Seeds are taken mod 2**64.

    Payload (8 + 4k bytes): the seed as uint64 little-endian; then the k kept values as binary32
    little-endian, in ascending index order.

    >>> randk_indices(7, n=10, k=3).tolist()
    [0, 3, 8]
    """

    fraction: float = 0.01

    def __post_init__(self) -> None:
        check_fraction("randk", self.fraction)

    @property
    def spec(self) -> Spec:
        return Spec("randk", {"fraction": self.fraction})

    def payload_size(self, n: int) -> int:
        return 8 + 4 * kept_count(self.fraction, n)

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        x32 = as_f32(x)
        n = x32.shape[-1]
        seeds = row_seeds(seed, None if x32.dim() == 1 else x32.shape[0])
        index = torch.from_numpy(randk_indices(seeds, n=n, k=kept_count(self.fraction, n)))
        index = index.reshape(*x32.shape[:-1], -1).to(x32.device)
        out = torch.zeros_like(x32).scatter_(-1, index, x32.gather(-1, index))
        return out.to(x.dtype)

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        x32 = as_f32_1d(x)
        n = x32.shape[0]
        (seed64,) = row_seeds(seed, None)
        index = torch.from_numpy(randk_indices(seed64, n=n, k=kept_count(self.fraction, n)))
        values = x32[index].numpy().astype(LE_F32, copy=False)
        return np.array([seed64], dtype="<u8").tobytes() + values.tobytes()

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        check_payload(payload, n, self.payload_size(n), "randk")
        k = kept_count(self.fraction, n)
        seed = int(np.frombuffer(payload, dtype="<u8", count=1)[0])
        values = f32_tensor(np.frombuffer(payload, dtype=LE_F32, count=k, offset=8))
        check_finite(values, "randk")
        out = torch.zeros(n, dtype=torch.float32)
        out[torch.from_numpy(randk_indices(seed, n=n, k=k))] = values
        return out


def randk_indices(seed: int | list[int], *, n: int, k: int) -> npt.NDArray[np.int64]:
    """The ascending indices ``randk`` keeps: shape [k] for one seed, [len(seed), k] for a list."""
    seeds = np.array(
        [s & MASK64 for s in ([seed] if isinstance(seed, int) else seed)], dtype=np.uint64
    )
    j = np.arange(k, dtype=np.uint64)
    z = seeds[:, None] + (j + np.uint64(1)) * np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    z ^= z >> np.uint64(31)
    lo = np.arange(k, dtype=np.int64) * n // max(k, 1)
    hi = np.arange(1, k + 1, dtype=np.int64) * n // max(k, 1)
    index = lo + (z % (hi - lo).astype(np.uint64)).astype(np.int64)
    result: npt.NDArray[np.int64] = index[0] if isinstance(seed, int) else index
    return result
