"""Per-round failure masks: pure functions of (seed, round) built from a FailureConfig.

>>> crash_alive((Crash(peer=1, at=2, recover=4),), 3, round=3).tolist()
[True, False, True]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sim.availability import availability_schedule
from sim.failures import Churn, Crash, FailureConfig, PartitionWindow

__all__ = [
    "FailureModel",
    "churn_schedule",
    "crash_alive",
    "drop_mask",
    "partition_cut",
    "peer_subset",
    "round_rng",
]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# Distinct streams so that, say, enabling churn does not change which messages are dropped.
# Stream 5 is the noise attack's (protocol.attacks.attack_seed).
_STREAM = {"drop": 1, "churn": 2, "stragglers": 3, "byzantine": 4}


def round_rng(seed: int, stream: str, round: int = 0) -> np.random.Generator:
    """An independent generator for (seed, stream, round).

    >>> round_rng(0, "drop", 3).random() == round_rng(0, "drop", 3).random()
    True
    """
    sequence = np.random.SeedSequence([seed, _STREAM[stream], round])
    return np.random.Generator(np.random.PCG64(sequence))


def drop_mask(p: float, n_edges: int, *, seed: int, round: int) -> BoolArray:
    """True where the message on that directed edge is lost this round.

    >>> drop_mask(0.0, 4, seed=1, round=0).tolist()
    [False, False, False, False]
    >>> drop_mask(1.0, 2, seed=1, round=0).tolist()
    [True, True]
    """
    if p <= 0:
        return np.zeros(n_edges, dtype=bool)
    return round_rng(seed, "drop", round).random(n_edges) < p


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
    cut: BoolArray = (src < boundary) != (dst < boundary)
    return cut


def peer_subset(fraction: float, n: int, *, rng: np.random.Generator) -> BoolArray:
    """A seeded set of round(fraction * n) peers.

    >>> int(peer_subset(0.25, 8, rng=np.random.default_rng(0)).sum())
    2
    """
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.permutation(n)[: round(fraction * n)]] = True
    return chosen


class FailureModel:
    """The failure settings of one run turned into per-round masks (pure in seed and round)."""

    def __init__(
        self, config: FailureConfig, *, peers: int, rounds: int, local_steps: int, seed: int
    ) -> None:
        config.check(peers)
        self.config, self.peers, self.seed = config, peers, seed
        self._churn = (
            None if config.churn is None else churn_schedule(config.churn, peers, rounds, seed=seed)
        )
        self._available = (
            None
            if config.availability is None
            else availability_schedule(config.availability, peers, rounds, seed=seed)
        )
        self._steps = np.full(peers, local_steps, dtype=np.int64)
        if config.stragglers is not None:
            slow = peer_subset(config.stragglers.fraction, peers, rng=round_rng(seed, "stragglers"))
            fewer = config.stragglers.steps
            self._steps[slow] = local_steps // 2 if fewer is None else min(fewer, local_steps)
        self.byzantine: BoolArray = np.zeros(peers, dtype=bool)
        if config.byzantine is not None:
            rng = round_rng(seed, "byzantine")
            self.byzantine = peer_subset(config.byzantine.fraction, peers, rng=rng)
        self.forgers: BoolArray = (
            self.byzantine
            if config.byzantine is None or not config.byzantine.mixes
            else np.zeros(peers, dtype=bool)
        )
        """The attackers that publish forged models and mix nothing (all but labelflip's)."""

    def alive(self, round: int) -> BoolArray:
        """Peers that are up this round: they train, publish and mix."""
        alive = crash_alive(self.config.crashes, self.peers, round=round)
        if self._churn is not None and round < len(self._churn):
            alive &= self._churn[round]
        if self._available is not None and round < len(self._available):
            alive &= self._available[round]
        return alive

    def lost(self, src: IntArray, dst: IntArray, *, round: int) -> BoolArray:
        """Messages lost in the network this round (drop or partition), per directed edge."""
        lost = drop_mask(self.config.drop, len(src), seed=self.seed, round=round)
        if self.config.partition is not None:
            lost |= partition_cut(self.config.partition, self.peers, src, dst, round=round)
        return lost

    def steps(self, alive: BoolArray) -> IntArray:
        """Local SGD steps per peer this round: 0 for peers that are down."""
        return np.where(alive, self._steps, 0)
