"""A round's mixing terms grouped by receiver: compressed sparse rows, as the fused CPU kernel
(:func:`sim.kernels.mix_rows`) reads them, and slots, as the torch formulation of
:class:`sim.engines.mixer.SparseMixer` adds them (all receivers' k-th terms at once)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from protocol.mixing import WIDE
from sim.plan import RoundPlan

__all__ = ["Rows", "Slot", "receiver_rows", "slot_totals", "slots"]


@dataclass(frozen=True)
class Rows:
    """The terms of every receiver's sum, receiver by receiver."""

    indptr: npt.NDArray[np.int64]
    """Receiver i's terms are ``indptr[i] .. indptr[i + 1]`` [N + 1]."""
    senders: npt.NDArray[np.int64]
    """Sender row of each term, in the order the receiver adds them [E]."""
    weights: npt.NDArray[np.float64]
    """Mixing weight of each term, as peers round it, widened to float64 [E]."""


def receiver_rows(
    src: npt.NDArray[np.int64],
    dst: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    use: npt.NDArray[np.bool_],
    n: int,
) -> Rows:
    """The used edges of ``n`` peers grouped by receiver, each receiver's senders in edge order
    (the order a daemon adds them in).

    >>> rows = receiver_rows(np.array([1, 2, 0, 3]), np.array([0, 0, 2, 0]),
    ...                      np.array([0.1, 0.2, 0.3, 0.4]), np.array([True, True, True, False]), 4)
    >>> rows.indptr.tolist(), rows.senders.tolist(), rows.weights.tolist()
    ([0, 2, 2, 3, 3], [1, 2, 0], [0.1, 0.2, 0.3])
    """
    edges = np.flatnonzero(use)
    order = edges[np.argsort(dst[edges], kind="stable")]
    counts = np.bincount(dst[order], minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return Rows(indptr, src[order].astype(np.int64), weight[order])


@dataclass(frozen=True)
class Slot:
    """Terms of the receivers' sums: the k-th mixed in-neighbour of each receiver that has one,
    or (the last slot) all remaining terms, each receiver's in order."""

    receivers: torch.Tensor
    """Receiver row of each term [R]; repeated only in a merged last slot."""
    senders: torch.Tensor
    """Sender row of each term [R]."""
    weight: torch.Tensor
    """Its mixing weight [R, 1], float64."""
    every: bool
    """Whether ``receivers`` is 0 .. N-1 (a regular graph's slots), so no scatter is needed."""


def slots(use: npt.NDArray[np.int64], plan: RoundPlan, weight: torch.Tensor, n: int) -> list[Slot]:
    """Split the used edges (indices into the plan's) into slots by rank within their receiver.

    Ranks from the first one whose remaining edges number at most ``n`` share one last slot
    (``index_add_`` adds repeated rows in index order): a hub of degree d then costs one slot,
    not d.

    >>> import types
    >>> plan = types.SimpleNamespace(src=np.array([1, 2, 0, 3]), dst=np.array([0, 0, 1, 0]))
    >>> [s.senders.tolist() for s in slots(np.arange(4), plan, torch.ones(4), 2)]
    [[1, 0], [2, 3]]
    """
    order = use[np.argsort(plan.dst[use], kind="stable")]  # receiver-major, senders in order
    dst = plan.dst[order]
    first = np.searchsorted(dst, dst)  # index of each receiver's first edge
    rank = np.arange(len(order)) - first
    # edges of rank >= k, for each k: merge from the first k >= 1 where they fit in [n, P]
    remaining = len(order) - np.searchsorted(
        np.sort(rank), np.arange(int(rank.max(initial=-1)) + 2)
    )
    fits = np.flatnonzero((remaining <= n) & (np.arange(len(remaining)) >= 1))
    merge_from = int(fits[0]) if len(fits) else len(remaining)
    out = []
    for k in range(min(merge_from + 1, len(remaining) - 1)):
        edges = order[rank == k] if k < merge_from else order[rank >= k]
        receivers = plan.dst[edges]
        out.append(
            Slot(
                receivers=torch.from_numpy(receivers),
                senders=torch.from_numpy(plan.src[edges]),
                weight=weight[torch.from_numpy(edges)].unsqueeze(-1),
                every=len(receivers) == n and bool((receivers == np.arange(n)).all()),
            )
        )
    return out


def slot_totals(slots_: list[Slot], n: int) -> torch.Tensor:
    """Each receiver's sum of weights [n] in float64, added slot by slot as neighbour_sum adds
    them (0 for receivers that mix nothing)."""
    total = torch.zeros(n, dtype=WIDE)
    for k, slot in enumerate(slots_):
        weight = slot.weight.squeeze(-1)
        if k == 0:
            total.index_copy_(0, slot.receivers, weight)
        else:
            total.index_add_(0, slot.receivers, weight)
    return total
