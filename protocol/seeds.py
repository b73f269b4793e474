"""The seeds of randomised codecs: each sender's stable 64-bit seed, and each frame's.

Both come from SplitMix64 (docs/protocol.md, section 7, gives the formulas for other
implementations): ``sender_seed = splitmix64(splitmix64(run_seed, 1), peer_index + 1)`` and
``frame_seed = splitmix64(sender_seed, seq + 1)``. The daemon calls the scalar forms, the
simulator the vectorised ones, so both draw the same randk subsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from protocol.codecs._common import MASK64

__all__ = ["frame_seed", "frame_seeds", "sender_seed", "sender_seeds", "splitmix64"]

IntArray: TypeAlias = npt.NDArray[np.integer]

_GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: int) -> int:
    """SplitMix64's finaliser, a bijection of 64-bit words."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def splitmix64(state: int, i: int) -> int:
    """Output number ``i`` (from 1) of SplitMix64 started at ``state``: ``mix(state + i * G)``.

    ``G = 0x9E3779B97F4A7C15``, arithmetic mod 2**64; ``state`` is taken mod 2**64. For a fixed
    state, distinct ``i`` (mod 2**64) give distinct outputs.

    >>> hex(splitmix64(0, 1))
    '0xe220a8397b1dcdaf'
    """
    return _mix(((state & MASK64) + i * _GOLDEN) & MASK64)


def sender_seed(run_seed: int, peer_index: int) -> int:
    """The stable 64-bit seed of the sender at ``peer_index`` in a swarm seeded with ``run_seed``.

    ``splitmix64(splitmix64(run_seed mod 2**64, 1), peer_index + 1)``: the one rule the daemon
    and the simulator share, so both draw the same randk subsets. Distinct for every peer index
    of one run (a bijection of the index); across run seeds, two senders share a seed only by a
    chance of about 2**-64 per pair. Any number of peers and any run seed.

    >>> sender_seed(3, 1) != sender_seed(2**16 + 3, 1), sender_seed(0, 100_000) < 2**64
    (True, True)
    """
    if peer_index < 0:
        raise ValueError(f"peer_index {peer_index} out of range; expected >= 0")
    return splitmix64(splitmix64(run_seed, 1), peer_index + 1)


def sender_seeds(run_seed: int, peers: int) -> npt.NDArray[np.uint64]:
    """:func:`sender_seed` of peers ``0 .. peers - 1``, vectorised.

    >>> sender_seeds(7, 3).tolist() == [sender_seed(7, i) for i in range(3)]
    True
    """
    state = np.uint64(splitmix64(run_seed, 1))
    index = np.arange(1, peers + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic mod 2**64 is the point
        return _mix_array(state + index * np.uint64(_GOLDEN))


def _mix_array(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def frame_seed(seed: int, seq: int) -> int:
    """The codec seed of frame ``seq`` of a sender with stable seed ``seed``.

    ``splitmix64(seed, seq + 1)``: distinct frames of one sender get distinct codec seeds, and
    the mixing decorrelates the SplitMix64 streams randk draws from consecutive frames.

    >>> frame_seed(0, 0) == splitmix64(0, 1), frame_seed(0, 1) != frame_seed(1, 0)
    (True, True)
    """
    return splitmix64(seed, seq + 1)


def frame_seeds(seeds: Sequence[int] | IntArray, seqs: int | Sequence[int] | IntArray) -> list[int]:
    """:func:`frame_seed` for a batch of senders, vectorised: one seq for all, or one each.

    >>> frame_seeds([5, 6], [0, 9]) == [frame_seed(5, 0), frame_seed(6, 9)]
    True
    >>> frame_seeds(np.array([5, 6]), 3) == [frame_seed(5, 3), frame_seed(6, 3)]
    True
    """
    if isinstance(seeds, np.ndarray) and seeds.dtype == np.uint64:
        stable = seeds
    else:
        values = seeds.tolist() if isinstance(seeds, np.ndarray) else seeds  # never via float64
        stable = np.array([int(v) & MASK64 for v in values], dtype=np.uint64)
    seq = np.broadcast_to(np.asarray(seqs, dtype=np.uint64), stable.shape)
    with np.errstate(over="ignore"):  # arithmetic mod 2**64 is the point
        z = _mix_array(stable + (seq + np.uint64(1)) * np.uint64(_GOLDEN))
    return [int(v) for v in z.tolist()]
