"""Helpers every codec shares: input normalisation, payload checks and seed handling.

Codecs compute in float32 (the wire format) and cast the result back to the input's dtype, so
``compress`` on a float64 batch equals ``compress`` on its float32 rounding, cast to float64.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from protocol.codecs.base import Seeds
from protocol.errors import InconsistentLength, NonFiniteValues
from protocol.types import Vector

__all__ = [
    "LE_F32",
    "MASK64",
    "as_f32",
    "as_f32_1d",
    "check_finite",
    "check_finite_array",
    "check_payload",
    "check_shape",
    "f32_tensor",
    "row_seeds",
]

LE_F32 = np.dtype("<f4")
"""fp32, little-endian: the byte order of every float on the wire."""

MASK64 = (1 << 64) - 1


def as_f32(x: Vector) -> torch.Tensor:
    """``x`` detached, contiguous float32 on its own device (no copy when it already is).

    ``compress`` runs on the input's device, so the simulator may keep batches on a GPU; the
    bit-exact contract with ``to_bytes`` (which works on the CPU) is guaranteed on the CPU.
    """
    return check_shape(x).to(dtype=torch.float32).contiguous()


def check_shape(x: Vector) -> torch.Tensor:
    """``x`` detached, after checking it is a tensor of shape [P] or [N, P]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (1, 2):
        raise ValueError(f"expected a vector [P] or a batch [N, P], got shape {tuple(x.shape)}")
    return x.detach()


def as_f32_1d(x: Vector) -> torch.Tensor:
    """Like :func:`as_f32`, for ``to_bytes``, which takes one vector [P] only."""
    out = as_f32(x)
    if out.dim() != 1:
        raise ValueError(f"to_bytes takes one vector [P], got shape {tuple(x.shape)}")
    return out.cpu()


def check_payload(payload: bytes, n: int, expected: int, name: str) -> None:
    """Raise InconsistentLength unless ``n`` is a count and ``payload`` has ``expected`` bytes."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InconsistentLength(f"{name}: parameter count {n!r} is not a non-negative integer")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InconsistentLength(f"{name}: payload is {type(payload).__name__}, expected bytes")
    actual = len(payload)
    if actual != expected:
        raise InconsistentLength(
            f"{name}: payload is {actual} bytes, expected {expected} for n={n} parameters"
        )


def f32_tensor(array: npt.NDArray[np.float32]) -> torch.Tensor:
    """A writable native-endian float32 tensor that owns its memory (copies ``array``)."""
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


def check_finite(values: torch.Tensor, name: str) -> None:
    """Raise NonFiniteValues if ``values`` holds NaN or infinity, naming the first bad index."""
    check_finite_array(values.numpy(), name)  # numpy: several times faster than torch on 1 core


def check_finite_array(values: npt.NDArray[np.floating], name: str) -> None:
    """:func:`check_finite` on a numpy array (which may be a read-only view of a payload)."""
    finite = np.isfinite(values)
    if not finite.all():
        first = int(np.argmin(finite))
        raise NonFiniteValues(
            f"{name}: decoded value {float(values[first])} at index {first}; expected finite"
        )


def row_seeds(seed: Seeds, rows: int | None) -> list[int]:
    """Seeds reduced mod 2**64: one for a vector (``rows`` None), else one per row.

    An int seed for a batch is used for every row.
    """
    if isinstance(seed, int | np.integer):
        return [int(seed) & MASK64] * (1 if rows is None else rows)
    seeds = [int(s) & MASK64 for s in seed]
    expected = 1 if rows is None else rows
    if len(seeds) != expected:
        raise ValueError(f"got {len(seeds)} seeds, expected {expected} (one per row)")
    return seeds
