"""The receive half of a round: the sync barrier, and mixing with what arrived.

Kept apart from the loop in :mod:`peer.runtime.runtime` so that each reads on its own: the
barrier decides *when* a round's receiving is over, :func:`mix_received` *what* goes into the
model (through the same :mod:`protocol.mixing` functions the simulator calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence

import torch

from peer.runtime.finite import all_finite
from peer.runtime.inbound import Inbound
from protocol.aggregation import MEAN, aggregate
from protocol.mixing import choco_update, mix_weights, neighbour_sum
from protocol.spec import Spec
from protocol.types import PeerId

__all__ = ["MIX_CHUNK", "MixScratch", "first_of", "mix_received", "wait_for_round"]

log = logging.getLogger(__name__)

_POLL_S = 0.5
"""Liveness can change without a message (silence): re-check at least this often."""


async def wait_for_round(
    inbound: Inbound,
    alive: Callable[[], frozenset[PeerId]],
    round: int,
    *,
    timeout_s: float,
    stop: asyncio.Event,
    me: PeerId,
) -> tuple[frozenset[PeerId], bool]:
    """Until every live in-neighbour's frame of ``round`` (or a later one) is in, the
    timeout passes, or ``stop`` is set. Returns the neighbours alive at the end, and whether the
    timeout cut the wait short."""
    deadline = time.monotonic() + timeout_s
    while True:
        inbound.changed.clear()
        live = alive()
        missing = inbound.waiting_for(live, round)
        left = deadline - time.monotonic()
        if not missing or left <= 0 or stop.is_set():
            timed_out = bool(missing) and not stop.is_set()
            if timed_out:
                log.info(
                    "%s: round %d timed out waiting for %s", me, round, ", ".join(sorted(missing))
                )
            return live, timed_out
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(left, _POLL_S)):
                await first_of(inbound.changed.wait(), stop.wait())


async def first_of(*waits: Coroutine[object, object, object]) -> None:
    """Until the first of ``waits`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


MIX_CHUNK = 1 << 17
"""Parameters mixed at a time with :class:`MixScratch`: its float64 working memory is three
vectors of this length (1 MiB each) whatever the model's size. A 1M-parameter model with two
neighbours mixed in 2.2 ms this way (one thread, idle 2-core machine), 2.6 with 64 Ki chunks,
2.0 with 256 Ki (twice the memory), 3.2 in one piece (``bench/daemon_mix.py``)."""


class MixScratch:
    """Working memory for :func:`mix_received`, allocated once per peer and kept from round to
    round: float64 step, sum and term vectors of one chunk of parameters. The ``mean`` rule
    mixes chunk by chunk (every operation is elementwise: the same bits), from the
    neighbours' copies where they lie, so a 1M-parameter model with two neighbours needs 3 MiB
    of working memory instead of 32 MB, and no model-sized buffer is allocated afresh per round
    (page faults cost as much as the mixing itself on a loaded 2-core machine)."""

    def __init__(self, x: torch.Tensor, *, chunk: int = MIX_CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.chunk = chunk
        shape = (min(x.numel(), chunk),)
        self.step = torch.empty(shape, dtype=torch.float64)
        self.mixed = torch.empty(shape, dtype=torch.float64)
        self.term = torch.empty(shape, dtype=torch.float64)
        self._stacked: torch.Tensor | None = None
        self._whole_step: torch.Tensor | None = None

    def stack(self, copies: Sequence[torch.Tensor]) -> torch.Tensor:
        """``torch.stack(copies)`` into kept memory (grown when more copies come): the robust
        rules' input, which they read whole."""
        first = copies[0]
        kept = self._stacked
        if (
            kept is None
            or kept.shape[0] < len(copies)
            or kept.shape[1:] != first.shape
            or kept.dtype != first.dtype
        ):
            kept = torch.empty((len(copies), *first.shape), dtype=first.dtype)
            self._stacked = kept
        return torch.stack(list(copies), out=kept[: len(copies)])

    def whole_step(self, x: torch.Tensor) -> torch.Tensor | None:
        """A kept float64 vector shaped like ``x`` for :func:`protocol.mixing.choco_update`
        after a robust rule; None for a float64 ``x``, whose result would be that vector
        itself, overwritten the next round."""
        if x.dtype == torch.float64:
            return None
        kept = self._whole_step
        if kept is None or kept.shape != x.shape:
            kept = self._whole_step = torch.empty(x.shape, dtype=torch.float64)
        return kept

    def mix_mean(
        self,
        x: torch.Tensor,
        x_hat: torch.Tensor,
        weights: torch.Tensor,
        copies: Sequence[torch.Tensor],
        *,
        gamma: float,
    ) -> torch.Tensor:
        """:func:`protocol.mixing.neighbour_sum` and :func:`protocol.mixing.choco_update` of
        the flat vector ``x`` [P], one chunk at a time, into a new vector."""
        if x.dim() != 1 or any(v.shape != x.shape for v in (x_hat, *copies)):
            shapes = [tuple(v.shape) for v in (x, x_hat, *copies)]
            raise ValueError(f"expected the model, its copy and the neighbours' all [P]: {shapes}")
        new = torch.empty_like(x)
        size = x.numel()
        for lo in range(0, size, self.chunk):
            hi = min(size, lo + self.chunk)
            width = hi - lo
            mixed, total = neighbour_sum(
                weights,
                [copy[lo:hi] for copy in copies],
                out=self.mixed[:width],
                term=self.term[:width],
            )
            step = self.step[:width]
            choco_update(
                x[lo:hi], x_hat[lo:hi], mixed, total, gamma=gamma, scratch=step, out=new[lo:hi]
            )
        return new


def mix_received(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    round: int,
    *,
    weights: Mapping[PeerId, float],
    inbound: Inbound,
    alive: frozenset[PeerId],
    staleness: int | None,
    gamma: float,
    aggregator: Spec = MEAN,
    scratch: MixScratch | None = None,
) -> tuple[torch.Tensor, int]:
    """CHOCO-mix ``x`` with the neighbours' copies for ``round``; (new x, how many mixed).

    ``staleness`` None is sync mode: the copies sent in ``round`` (or the earliest newer one).
    Otherwise async: each live neighbour's newest copy within ``staleness`` rounds. Missing
    weight stays with the peer; a non-finite result keeps ``x``. ``aggregator`` is the rule that
    combines the copies (:func:`protocol.aggregation.aggregate`). ``scratch``: working memory
    kept from round to round (:class:`MixScratch`), with which the ``mean`` rule mixes a flat
    ``x`` chunk by chunk; the same bits without it.
    """
    used_weights, copies = [], []
    for peer, w in weights.items():
        # Sync: a frame of this round proves its sender took part in it, even when the
        # sender's offline notice (it finished, or crashed) arrived before we mix.
        if staleness is not None and peer not in alive:
            continue
        copy = inbound.copy_for(peer, round, staleness=staleness)
        if copy is not None:
            used_weights.append(w)
            copies.append(copy)
    inbound.prune(round + 1)
    if not copies:
        return x, 0
    # In node order (the order of ``weights``), as the simulator sums: the same bits.
    weights_used = mix_weights(torch.tensor(used_weights, dtype=torch.float64), x.dtype)
    if scratch is not None and aggregator.name == MEAN.name and x.dim() == 1:
        new = scratch.mix_mean(x, x_hat, weights_used, copies, gamma=gamma)
    else:
        # One neighbour (a ring of two, a path's end): a view, not a copy of its vector.
        if len(copies) == 1:
            stacked = copies[0].unsqueeze(0)
        else:
            stacked = torch.stack(copies) if scratch is None else scratch.stack(copies)
        mixed, total = aggregate(aggregator, x_hat, weights_used, stacked)
        step = None if scratch is None else scratch.whole_step(x)
        new = choco_update(x, x_hat, mixed, total, gamma=gamma, scratch=step)
    if not all_finite(new):
        log.error("mixing round %d gave non-finite values; kept the local model", round)
        return x, len(copies)
    return new, len(copies)
