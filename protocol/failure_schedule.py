"""Seeded failure schedules, pure in (seed, round): who is down, which links lose their frames.

Shared by the simulator (:mod:`sim.failure_masks` builds its per-round masks from these) and by
``rumor up``, whose peers draw their own link losses with :func:`link_lost` and whose launcher
turns crashes and churn into the down periods of :func:`down_periods`. Torch-free.

>>> crash_alive((Crash(peer=1, at=2, recover=4),), 3, round=3).tolist()
[True, False, True]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from protocol.failures import Churn, Crash, PartitionWindow

__all__ = [
    "STREAMS",
    "churn_schedule",
    "crash_alive",
    "down_periods",
    "link_lost",
    "partition_cut",
    "peer_subset",
    "round_rng",
]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# Distinct streams so that, say, enabling churn does not change which messages are dropped.
# Stream 5 is the noise attack's (protocol.attacks.attack_seed).
STREAMS = {"drop": 1, "churn": 2, "stragglers": 3, "byzantine": 4}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


def _splitmix64(state: int, i: int) -> int:
    """:func:`protocol.seeds.splitmix64`, here so that this module stays torch-free.

    >>> from protocol.seeds import splitmix64
    >>> _splitmix64(7, 3) == splitmix64(7, 3), _splitmix64(-1, 2) == splitmix64(-1, 2)
    (True, True)
    """
    z = ((state & _MASK64) + i * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def round_rng(seed: int, stream: str, round: int = 0) -> np.random.Generator:
    """An independent generator for (seed, stream, round).

    >>> round_rng(0, "drop", 3).random() == round_rng(0, "drop", 3).random()
    True
    """
    sequence = np.random.SeedSequence([seed, STREAMS[stream], round])
    return np.random.Generator(np.random.PCG64(sequence))


def _mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):  # arithmetic mod 2**64 is the point
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def link_lost(
    p: float, src: Sequence[int] | IntArray, dst: Sequence[int] | IntArray, *, seed: int, round: int
) -> BoolArray:
    """True where the frame ``src`` sends ``dst`` in ``round`` is lost, with probability ``p``.

    A SplitMix64 hash of (seed, round, src, dst) per directed link: the simulator draws every
    edge at once, a real receiver draws its own in-links one by one, and both get the same bits.

    >>> link_lost(0.5, [0, 1, 2], [1, 2, 0], seed=7, round=3).tolist() == [
    ...     bool(link_lost(0.5, [s], [d], seed=7, round=3)[0]) for s, d in ((0, 1), (1, 2), (2, 0))
    ... ]
    True
    >>> link_lost(0.0, [0], [1], seed=0, round=0).tolist()
    [False]
    >>> link_lost(1.0, [0], [1], seed=0, round=0).tolist()
    [True]
    """
    s = np.asarray(src, dtype=np.int64).astype(np.uint64)
    d = np.asarray(dst, dtype=np.int64).astype(np.uint64)
    if p <= 0:
        return np.zeros(s.shape, dtype=bool)
    base = np.uint64(_splitmix64(_splitmix64(seed, STREAMS["drop"]), round + 1))
    with np.errstate(over="ignore"):
        h = _mix(base + (s + np.uint64(1)) * _GOLDEN)
        h = _mix(h + (d + np.uint64(1)) * _GOLDEN)
    uniform = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    lost: BoolArray = uniform < p
    return lost


def crash_alive(crashes: Sequence[Crash], n: int, *, round: int) -> BoolArray:
    """Which peers the crash schedule leaves up at ``round``."""
    alive = np.ones(n, dtype=bool)
    for crash in crashes:
        if crash.at <= round and (crash.recover is None or round < crash.recover):
            alive[crash.peer] = False
    return alive


def churn_schedule(churn: Churn, n: int, rounds: int, *, seed: int) -> BoolArray:
    """Up (True) or down per [round, peer]: alternating geometric periods, stationary start.

    >>> sched = churn_schedule(Churn(up=4, down=2), 50, 400, seed=0)
    >>> sched.shape, bool(0.55 < sched.mean() < 0.78)
    ((400, 50), True)
    """
    rng = round_rng(seed, "churn")
    up = np.ones((rounds, n), dtype=bool)
    churning = peer_subset(churn.fraction, n, rng=rng)
    for peer in np.flatnonzero(churning):
        state = bool(rng.random() < churn.up / (churn.up + churn.down))
        t = 0
        while t < rounds:
            # Geometric periods are memoryless, so starting mid-period is already stationary.
            length = int(rng.geometric(1.0 / (churn.up if state else churn.down)))
            up[t : t + length, peer] = state
            t += length
            state = not state
    return up


def down_periods(up: BoolArray) -> list[Crash]:
    """The down periods of an up/down schedule [round, peer] as crashes, in round order (a
    period that lasts to the end has no recovery round).

    >>> up = np.array([[True, True], [False, True], [False, True], [True, False]])
    >>> down_periods(up)
    [Crash(peer=0, at=1, recover=3), Crash(peer=1, at=3, recover=None)]
    """
    periods = []
    rounds = up.shape[0]
    for peer in range(up.shape[1]):
        column = np.concatenate([[True], up[:, peer], [True]])
        starts = np.flatnonzero(column[:-1] & ~column[1:])
        ends = np.flatnonzero(~column[:-1] & column[1:])
        for at, end in zip(starts.tolist(), ends.tolist(), strict=True):
            periods.append(Crash(peer=peer, at=at, recover=None if end >= rounds else end))
    return sorted(periods, key=lambda c: (c.at, c.peer))


def partition_cut(
    window: PartitionWindow, n: int, src: IntArray, dst: IntArray, *, round: int
) -> BoolArray:
    """True on edges that cross the two groups while the window is open.

    >>> w = PartitionWindow(start=0, end=5)
    >>> partition_cut(w, 4, np.array([0, 1, 2]), np.array([1, 2, 3]), round=1).tolist()
    [False, True, False]
    """
    if not window.start <= round < window.end:
        return np.zeros(len(src), dtype=bool)
    boundary = int(np.floor(window.fraction * n))
    cut: BoolArray = (np.asarray(src) < boundary) != (np.asarray(dst) < boundary)
    return cut


def peer_subset(fraction: float, n: int, *, rng: np.random.Generator) -> BoolArray:
    """A seeded set of round(fraction * n) peers.

    >>> int(peer_subset(0.25, 8, rng=np.random.default_rng(0)).sum())
    2
    """
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.permutation(n)[: round(fraction * n)]] = True
    return chosen
