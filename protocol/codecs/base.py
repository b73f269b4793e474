"""The seam every codec implements.

A codec turns a flat float32 vector into bytes and back. The simulator never builds bytes: it calls
:meth:`Codec.compress`, which returns exactly what a receiver would decode, on a whole batch
[N, P] at once, and :meth:`Codec.payload_size` for the exact byte count. The daemon calls
:meth:`Codec.to_bytes` and :meth:`Codec.from_bytes` on one vector [P]. The contract that makes the
simulator measure what the daemons do::

    codec.from_bytes(codec.to_bytes(x, seed=s), x.numel()) == codec.compress(x, seed=s)  # exactly
    len(codec.to_bytes(x, seed=s)) == codec.payload_size(x.numel())
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from protocol.spec import Spec
from protocol.types import Vector

__all__ = ["Codec", "Seeds"]

Seeds = int | Sequence[int]
"""One seed for a single vector [P], or one per row of a batch [N, P]."""


@runtime_checkable
class Codec(Protocol):
    """Lossy or lossless compression of flat float32 vectors."""

    @property
    def spec(self) -> Spec:
        """Name and parameters, as written in the envelope's ``codec`` field."""
        ...

    def compress(self, x: Vector, *, seed: Seeds = 0) -> Vector:
        """What the receiver decodes, for [P] or a batch [N, P].

        Same shape and dtype as ``x``: computed in float32, except ``raw``, the exact identity.
        """
        ...

    def payload_size(self, n: int) -> int:
        """Exact length in bytes of ``to_bytes`` for a vector of ``n`` parameters."""
        ...

    def to_bytes(self, x: Vector, *, seed: int = 0) -> bytes:
        """Serialise one vector [P]."""
        ...

    def from_bytes(self, payload: bytes, n: int) -> Vector:
        """Decode one vector of ``n`` parameters; raises ProtocolError subclasses on bad input."""
        ...
