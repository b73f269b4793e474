"""Per-round failure masks: pure functions of (seed, round) built from a FailureConfig (the
shared schedules are :mod:`protocol.failure_schedule`'s, which ``rumor up`` uses too).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from protocol.failure_schedule import (
    churn_schedule,
    crash_alive,
    link_lost,
    partition_cut,
    peer_subset,
    round_rng,
)
from sim.availability import availability_schedule
from sim.failures import FailureConfig

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


def drop_mask(p: float, src: IntArray, dst: IntArray, *, seed: int, round: int) -> BoolArray:
    """True where the message on that directed edge is lost this round
    (:func:`protocol.failure_schedule.link_lost`, which a real receiver draws too).

    >>> drop_mask(0.0, np.arange(4), np.arange(1, 5), seed=1, round=0).tolist()
    [False, False, False, False]
    >>> drop_mask(1.0, np.arange(2), np.arange(1, 3), seed=1, round=0).tolist()
    [True, True]
    """
    return link_lost(p, src, dst, seed=seed, round=round)


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
        lost = drop_mask(self.config.drop, src, dst, seed=self.seed, round=round)
        if self.config.partition is not None:
            lost |= partition_cut(self.config.partition, self.peers, src, dst, round=round)
        return lost

    def steps(self, alive: BoolArray) -> IntArray:
        """Local SGD steps per peer this round: 0 for peers that are down."""
        return np.where(alive, self._steps, 0)
