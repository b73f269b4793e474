"""What happens in one round, decided before any tensor moves: the engines only execute it.

A :class:`RoundPlan` says who is up, how many local steps each peer takes, which frames are
keyframes, which messages arrive and which arrived messages may be mixed. It depends only on the
schedule, the failure model and the seed, never on parameters, so both engines execute the very
same plan and parity cannot be broken by the failure machinery.

CHOCO copies. Every receiver holds a copy of each in-neighbour's public vector x_hat. A delta
only applies on top of the frame before it, so a lost delta leaves the receiver's copy of that
sender stale until the sender's next keyframe reaches it (this is the daemon's ``UnknownBase``
rule). The planner tracks the set of such out-of-sync (sender, receiver) pairs exactly; an
out-of-sync pair is left out of mixing, and its weight goes to the receiver itself.

For time-varying schedules the planner assumes that peers subscribe to everyone they ever mix
with, and applies message loss to the links that mix in the round (a down receiver misses the
frames on all of them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt

from protocol.seeds import frame_seeds, sender_seeds
from sim.failure_masks import FailureModel
from topology.mixing import MixingEdges

__all__ = ["FrameSeeds", "Planner", "RoundPlan"]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class RoundPlan:
    round: int
    src: IntArray
    """Directed edges of this round: dst receives from src with ``weight``."""
    dst: IntArray
    weight: FloatArray
    alive: BoolArray
    """[N] up this round: trains, publishes and mixes. A down peer's state is frozen."""
    steps: IntArray
    """[N] local SGD steps (0 when down)."""
    keyframe: BoolArray
    """[N] the frame a live peer publishes this round is a keyframe (full public copy, raw)."""
    seqs: IntArray
    """[N] seq of the frame each live peer publishes this round (its frame count so far)."""
    seeds: Sequence[int]
    """[N] codec seed of each peer's frame this round (64-bit); the planner's are computed
    only if read (:class:`FrameSeeds`: the raw codec never does)."""
    delivered: BoolArray
    """[E] the sender published and the message reached a live receiver."""
    mix: BoolArray
    """[E] delivered and the receiver's copy of the sender is in sync: these edges are mixed."""
    byzantine: BoolArray
    """[N] peers that publish a forged model and ignore what they receive (the attackers,
    except data poisoners, which follow the protocol)."""


class FrameSeeds(Sequence[int]):
    """Codec seeds of one round's frames, computed on first use: :func:`protocol.seeds.
    frame_seed` of each peer's :func:`protocol.seeds.sender_seed` (what a daemon with that seed
    and index uses) and of the seq of its frame. A codec that draws nothing (raw, fp16, ...)
    never pays for N 64-bit Python integers per round.

    >>> from protocol.seeds import frame_seed, sender_seed
    >>> seeds = FrameSeeds(sender_seeds(3, 2), np.array([0, 7]))
    >>> expected = [frame_seed(sender_seed(3, 0), 0), frame_seed(sender_seed(3, 1), 7)]
    >>> list(seeds) == expected, len(seeds)
    (True, 2)
    """

    def __init__(self, senders: npt.NDArray[np.uint64], seqs: IntArray) -> None:
        self._senders, self._seqs = senders, seqs
        self._values: list[int] | None = None

    def _list(self) -> list[int]:
        if self._values is None:
            self._values = frame_seeds(self._senders, self._seqs)
        return self._values

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> list[int]: ...
    def __getitem__(self, index: int | slice) -> int | list[int]:
        return self._list()[index]

    def __len__(self) -> int:
        return len(self._seqs)

    def __iter__(self) -> Iterator[int]:
        return iter(self._list())


class Planner:
    """Turns (schedule, failures, seed) into one :class:`RoundPlan` per round, in order."""

    def __init__(
        self, failures: FailureModel, *, peers: int, keyframe_interval: int, seed: int
    ) -> None:
        self.failures, self.peers, self.seed = failures, peers, seed
        self.keyframe_interval = keyframe_interval
        self._seq = np.zeros(peers, dtype=np.int64)
        """The seq of each peer's next frame."""
        self._stale = np.zeros(0, dtype=np.int64)
        """Sorted keys src * N + dst of out-of-sync pairs."""
        self._edges: tuple[MixingEdges, IntArray, IntArray, FloatArray] | None = None
        self._was_alive = np.ones(peers, dtype=bool)
        self._senders = sender_seeds(seed, peers)
        """Every peer's stable codec seed (the same every round)."""

    def plan(self, round: int, edges: MixingEdges) -> RoundPlan:
        src, dst, weight = self._arrays(edges)
        alive = self.failures.alive(round)
        self._rejoin_with_keyframes(alive, src, dst)
        seqs = self._seq.copy()
        keyframe = alive & (seqs % self.keyframe_interval == 0)
        published = alive[src]
        delivered = published & alive[dst]
        if self.failures.config.lossy:
            delivered &= ~self.failures.lost(src, dst, round=round)
            stale = self._update_sync(src, dst, published, delivered, keyframe[src])
        else:
            stale = np.zeros(len(src), dtype=bool)
        self._seq += alive
        return RoundPlan(
            round=round,
            src=src,
            dst=dst,
            weight=weight,
            alive=alive,
            steps=self.failures.steps(alive),
            keyframe=keyframe,
            seqs=seqs,
            seeds=FrameSeeds(self._senders, seqs),
            delivered=delivered,
            mix=delivered & ~stale,
            byzantine=self.failures.forgers & alive,
        )

    def _rejoin_with_keyframes(self, alive: BoolArray, src: IntArray, dst: IntArray) -> None:
        """What the daemons do when a peer comes back online: it resumes on a keyframe slot,
        and the neighbours that see its presence send it a keyframe at their next frame."""
        back = alive & ~self._was_alive
        self._was_alive = alive.copy()
        if not back.any():
            return
        rejoin = back.copy()
        rejoin[src[back[dst]]] = True
        rejoin &= alive
        interval = self.keyframe_interval
        self._seq[rejoin] = -(-self._seq[rejoin] // interval) * interval

    def _arrays(self, edges: MixingEdges) -> tuple[IntArray, IntArray, FloatArray]:
        """Writable copies of the edge arrays, reused while the schedule returns the same
        object (static topologies), so that engines can cache what they derive from them."""
        if self._edges is None or self._edges[0] is not edges:
            src, dst = edges.src.astype(np.int64), edges.dst.astype(np.int64)
            self._edges = (edges, src, dst, edges.weight.astype(np.float64))
        return self._edges[1], self._edges[2], self._edges[3]

    def _update_sync(
        self,
        src: IntArray,
        dst: IntArray,
        published: BoolArray,
        delivered: BoolArray,
        keyframe: BoolArray,
    ) -> BoolArray:
        """Apply this round's frames to the out-of-sync set; return staleness after them."""
        keys = src * self.peers + dst
        was_stale = np.isin(keys, self._stale, assume_unique=False)
        missed = published & ~delivered
        now_stale = (was_stale & ~(keyframe & delivered)) | missed
        changed = now_stale != was_stale
        if changed.any():
            keep = ~np.isin(self._stale, keys[changed & was_stale])
            added = keys[changed & now_stale]
            self._stale = np.union1d(self._stale[keep], added)
        return now_stale

    @property
    def stale_pairs(self) -> int:
        """How many (sender, receiver) copies are currently out of sync."""
        return len(self._stale)
