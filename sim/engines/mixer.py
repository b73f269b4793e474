"""The CHOCO mixing step of all N peers at once, with the daemon's arithmetic.

Peer i's step is :func:`protocol.mixing.choco_update` of :func:`protocol.mixing.neighbour_sum`
over the messages it mixes, in graph node order; the loop engine and every daemon call those on
[P]. Here the neighbour sum is built for all peers together, one *slot* at a time: slot k holds
every receiver's k-th mixed in-neighbour, so each receiver's float64 sum gets the same terms
added in the same order as the per-peer sum, and :func:`protocol.mixing.choco_update` then runs
on the batch [N, P]. The result is bit-identical to the loop engine's (tests/sim/test_parity.py).

The self term and the model are folded in with as few passes as the exact arithmetic allows:
where a receiver's ``total`` has at most :data:`_SHORT_BITS` significant bits (a regular graph's
equal weights always do), ``total * x_hat`` is exact in float64 like the neighbours' products,
so one ``addcmul_`` subtracts it with the same single rounding as ``choco_update``'s product and
subtraction; otherwise the product is rounded first, as there. A regular graph's copies are
widened once per round and gathered in float64 when that buffer is small
(:data:`_WIDE_BYTES`), else gathered in float32 block by block.

On the CPU, :func:`sim.kernels.mix_rows` does the same arithmetic in one fused pass per
receiver (4-5x faster than these passes on a 4-regular graph); the slots serve other devices.

A sparse ``W - diag(W 1)`` product (CSR addmm) took about half the time (1,000 peers, 20,000
parameters, degree 4, one thread: 0.28 s against 0.59 s per round on a loaded 2-core machine)
but summed in the matrix's column order, with the self term inside the sum and the kernel's own
blocking, so its results could not be bit-identical to a daemon's; quantising codecs amplify
such last bits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from protocol.mixing import WIDE, mix_weights
from sim import kernels
from sim.engines.rows import Rows, Slot, receiver_rows, slot_totals, slots
from sim.plan import RoundPlan

__all__ = ["SparseMixer", "edge_weights", "short_totals"]

_BLOCK_BYTES = 1 << 22
"""Float64 bytes of one block of receivers' sums when every peer mixes the same number of
messages: large swarms are mixed block by block, so the sums stay in cache."""
_WIDE_BYTES = 1 << 26
"""Up to this size, a regular graph's public copies are widened to float64 once per round and
gathered from there (one pass per slot instead of a gather and a widening copy)."""
_SHORT_BITS = 29
"""A float64 ``total`` with at most this many significant bits times a float32 copy (24 bits)
is exact in float64's 53."""


def short_totals(total: torch.Tensor) -> bool:
    """Whether every entry of the float64 ``total`` has at most :data:`_SHORT_BITS` significant
    bits, so that its product with any float32 value is exact in float64.

    >>> short_totals(torch.tensor([0.2, 0.2, 0.2, 0.2]).float().double().cumsum(0))
    True
    >>> short_totals(torch.tensor([0.1], dtype=torch.float64))
    False
    """
    mantissa, _ = torch.frexp(total.cpu())
    scaled = torch.ldexp(mantissa, torch.tensor(_SHORT_BITS, dtype=torch.float64))
    return bool((scaled == scaled.floor()).all())


def edge_weights(
    plan: RoundPlan, dtype: torch.dtype, device: torch.device | None = None
) -> torch.Tensor:
    """The plan's edge weights [E] as peers mix them (:func:`protocol.mixing.mix_weights`)."""
    weight = mix_weights(torch.tensor(plan.weight), dtype)  # a copy: plans may be read-only
    return weight if device is None else weight.to(device)


class SparseMixer:
    """Applies a round's mixing in place; caches the slots (and each receiver's ``total``) while
    edges and mask stay the same, and its float64 buffers while the shape does."""

    def __init__(self, *, fused: bool = True) -> None:
        self.fused = fused
        """Whether CPU tensors take the fused kernel (:func:`sim.kernels.mix_rows`)."""
        self._rows_key: tuple[npt.NDArray[np.int64], bytes] | None = None
        self._rows: Rows | None = None
        self._key: tuple[npt.NDArray[np.int64], bytes, torch.dtype, torch.device] | None = None
        self._slots: list[Slot] = []
        self._total = torch.zeros(0, dtype=WIDE)
        """Each receiver's float64 sum of weights, in slot order (neighbour_sum's ``total``)."""
        self._short = False
        """Whether every ``total`` times a float32 copy is exact (:func:`short_totals`)."""
        self._buffers: dict[str, torch.Tensor] = {}

    def mix(self, x: torch.Tensor, x_hat: torch.Tensor, plan: RoundPlan, *, gamma: float) -> None:
        """Mix ``x`` [N, P] in place with the public copies of the edges the plan mixes
        (Byzantine receivers mix none); rows that mix nothing are left exactly as they were."""
        use = plan.mix & ~plan.byzantine[plan.dst]
        if self.fused and kernels.usable(x, x_hat):
            terms = self._rows_for(plan, use, x.dtype)
            kernels.mix_rows(x, x_hat, terms.indptr, terms.senders, terms.weights, gamma=gamma)
            return
        slots_ = self._slots_for(plan, use, x.dtype, x.device)
        if not slots_:
            return
        block = max(1, _BLOCK_BYTES // (8 * x.shape[1]))
        if all(slot.every for slot in slots_) and x.shape[0] > block and x.dtype == torch.float32:
            self._mix_blocks(x, x_hat, slots_, block, gamma=gamma)
            return
        wide = self._buffer("wide", x.shape, WIDE, x.device)
        term = self._buffer("term", x.shape, WIDE, x.device)
        mixed = self._buffer("mixed", x.shape, WIDE, x.device)
        wide.copy_(x_hat)  # widened once (exactly), then gathered per slot in float64
        # neighbour_sum's operations, one slot (k) at a time for all receivers. A float32
        # copy times its float64 weight is exact in float64, so ``addcmul_`` (product, then
        # one rounded addition, fused or not) adds the very same term as neighbour_sum does;
        # float64 copies (the consensus task) take the product and the sum one at a time.
        fused = x_hat.dtype == torch.float32
        for k, slot in enumerate(slots_):
            r = len(slot.senders)
            start = k == 0 and slot.every  # every receiver's sum starts here, in place
            torch.index_select(wide, 0, slot.senders, out=mixed if start else term[:r])
            if start:
                mixed.mul_(slot.weight)
            elif k > 0 and slot.every and fused:
                mixed.addcmul_(term, slot.weight)
            else:
                term[:r].mul_(slot.weight)
                if k == 0:  # each receiver's sum starts from its first term (neighbour_sum)
                    mixed.index_copy_(0, slot.receivers, term[:r])
                elif slot.every:
                    mixed.add_(term)
                else:
                    mixed.index_add_(0, slot.receivers, term[:r])
        short = self._short and fused
        if slots_[0].every:  # every peer mixes something
            _choco_tail(x, x, wide, mixed, self._total, short=short, gamma=gamma, scratch=term)
            return
        rows = slots_[0].receivers
        r = len(rows)
        own = torch.index_select(wide, 0, rows)
        sums = torch.index_select(mixed, 0, rows)
        x[rows] = _choco_tail(
            torch.empty_like(x[:r]),
            x[rows],
            own,
            sums,
            self._total[rows],
            short=short,
            gamma=gamma,
            scratch=term[:r],
        )

    def _mix_blocks(
        self, x: torch.Tensor, x_hat: torch.Tensor, slots_: list[Slot], rows: int, *, gamma: float
    ) -> None:
        """:meth:`mix` when every receiver mixes one message per slot, ``rows`` receivers at a
        time: each element goes through the very same operations, in cache. The copies are
        gathered from a float64 copy of ``x_hat`` when it is small (:data:`_WIDE_BYTES`), else
        in float32 and widened block by block."""
        n, p = x.shape
        rows = -(-n // max(1, round(n / rows)))  # equal blocks: a sliver costs every call too
        wide = None
        if n * p * 8 <= _WIDE_BYTES:
            wide = self._buffer("wide", x.shape, WIDE, x.device).copy_(x_hat)
        else:
            gathered = self._buffer("block_gathered", torch.Size((rows, p)), x.dtype, x.device)
        term = self._buffer("block_term", torch.Size((rows, p)), WIDE, x.device)
        mixed = self._buffer("block_mixed", torch.Size((rows, p)), WIDE, x.device)
        for lo in range(0, n, rows):
            hi = min(n, lo + rows)
            b = hi - lo
            for k, slot in enumerate(slots_):
                into = mixed[:b] if k == 0 else term[:b]
                if wide is not None:
                    torch.index_select(wide, 0, slot.senders[lo:hi], out=into)
                else:
                    torch.index_select(x_hat, 0, slot.senders[lo:hi], out=gathered[:b])
                    into.copy_(gathered[:b])
                if k == 0:  # the sum starts from the first term
                    mixed[:b].mul_(slot.weight[lo:hi])
                else:
                    mixed[:b].addcmul_(term[:b], slot.weight[lo:hi])  # exact product: see mix
            part = x[lo:hi]
            own = x_hat[lo:hi] if wide is None else wide[lo:hi]
            total = self._total[lo:hi]
            _choco_tail(
                part, part, own, mixed[:b], total, short=self._short, gamma=gamma, scratch=term[:b]
            )

    def _buffer(
        self, name: str, shape: torch.Size, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        buffer = self._buffers.get(name)
        if (
            buffer is None
            or buffer.shape != shape
            or buffer.dtype != dtype
            or buffer.device != device
        ):
            buffer = self._buffers[name] = torch.empty(shape, dtype=dtype, device=device)
        return buffer

    def _rows_for(self, plan: RoundPlan, use: npt.NDArray[np.bool_], dtype: torch.dtype) -> Rows:
        """The used edges grouped by receiver, senders in the plan's order; cached while the
        edges and the mask stay the same."""
        key = (plan.src, np.packbits(use).tobytes() + str(dtype).encode())
        if (
            self._rows is None
            or self._rows_key is None
            or key[0] is not self._rows_key[0]
            or key[1] != self._rows_key[1]
        ):
            weight = edge_weights(plan, dtype).to(WIDE).numpy()
            self._rows = receiver_rows(plan.src, plan.dst, weight, use, len(plan.alive))
            self._rows_key = key
        return self._rows

    def _slots_for(
        self,
        plan: RoundPlan,
        use: npt.NDArray[np.bool_],
        dtype: torch.dtype,
        device: torch.device,
    ) -> list[Slot]:
        """The slots of this round, on ``device``: built again only when the edges or the
        mask change, so a static run copies them to the device once."""
        # the planner hands out the same src array for as long as the schedule's edges last
        key = (plan.src, np.packbits(use).tobytes(), dtype, device)
        if self._key is None or key[0] is not self._key[0] or key[1:] != self._key[1:]:
            weight = edge_weights(plan, dtype)
            built = slots(np.flatnonzero(use), plan, weight, len(plan.alive))
            self._total = slot_totals(built, len(plan.alive)).to(device)
            self._short = short_totals(self._total)
            self._slots = [
                Slot(
                    receivers=s.receivers.to(device),
                    senders=s.senders.to(device),
                    weight=s.weight.to(device),
                    every=s.every,
                )
                for s in built
            ]
            self._key = key
        return self._slots


def _choco_tail(
    out: torch.Tensor,
    x: torch.Tensor,
    own: torch.Tensor,
    mixed: torch.Tensor,
    total: torch.Tensor,
    *,
    short: bool,
    gamma: float,
    scratch: torch.Tensor,
) -> torch.Tensor:
    """:func:`protocol.mixing.choco_update` of ``x`` [R, P] with the receivers' own copies
    ``own`` (float32 or already widened) into ``out``; ``mixed`` and ``scratch`` are float64
    working memory. ``short``: ``total * own`` is exact (:func:`short_totals`), so it is
    subtracted in one ``addcmul_``, with choco_update's single rounding."""
    weight = total.unsqueeze(-1)
    if own.dtype != WIDE:
        own = scratch.copy_(own)
    if short:
        mixed.addcmul_(own, weight, value=-1.0)  # mixed - total * x_hat: one rounding
    else:
        torch.mul(own, weight, out=scratch)  # total * x_hat, rounded
        mixed.sub_(scratch)
    if gamma != 1.0:  # (times 1.0 changes no bit)
        mixed.mul_(gamma)
    scratch.copy_(x)
    mixed.add_(scratch)  # x + gamma * (...): addition commutes, bit for bit
    return out.copy_(mixed)
