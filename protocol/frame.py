"""A CHOCO frame: what one peer publishes in one round, before the envelope wraps it.

A keyframe carries the sender's whole public copy (``raw`` codec, exact); a delta carries the
compressed difference that advances every holder of frame ``base`` to frame ``seq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from protocol.spec import Spec

__all__ = ["Frame", "FrameKind"]

FrameKind: TypeAlias = Literal["key", "delta"]


@dataclass(frozen=True, kw_only=True)
class Frame:
    kind: FrameKind
    seq: int
    """Monotonic per sender, starting at 0."""
    base: int | None
    """For a delta, the seq of the frame it applies to; None for a keyframe."""
    codec: Spec
    n: int
    """Parameter count of the decoded vector."""
    payload: bytes
