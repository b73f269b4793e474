"""The CHOCO mixing step of all N peers as one sparse product, summed in float64, rounded once.

Peer i's step, ``x_i + gamma * (sum_j w_ij x_hat_j - (sum_j w_ij) x_hat_i)`` over the messages it
mixes (:func:`protocol.mixing.gossip_update` of :func:`protocol.mixing.neighbour_mix`), is for all
peers at once ``x + gamma * M @ x_hat`` with the sparse matrix ``M = W - diag(W 1)`` of the used
edges: one in-place ``addmm`` instead of a dozen passes over [N, P] temporaries.

Why float64: with float32 weights (see :func:`mixing_weights`) and float32 copies, every product
is exact in float64, so summing in float64 and rounding once gives the loop engine's float32
result whatever the order of the sum; a last-bit difference would otherwise be amplified by
quantising codecs. Float64 models (the consensus task) are updated in place directly.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import torch

from sim.plan import RoundPlan

__all__ = ["SparseMixer", "choco_matrix", "mixing_weights"]


def mixing_weights(plan: RoundPlan, dtype: torch.dtype) -> torch.Tensor:
    """The plan's edge weights rounded to the model's precision, then widened to float64.

    Rounded so that a weight times a float32 copy is exact in float64 (see the module doc).
    """
    return torch.from_numpy(plan.weight).to(dtype).to(torch.float64)


def choco_matrix(
    src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor, n: int
) -> torch.Tensor:
    """``W - diag(W 1)`` [n, n] in CSR for directed edges src -> dst with ``weight`` [E].

    >>> m = choco_matrix(torch.tensor([1, 2]), torch.tensor([0, 0]), torch.tensor([0.25, 0.5]), 3)
    >>> m.to_dense().tolist()
    [[-0.75, 0.25, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    diagonal = torch.arange(n)
    rows, cols = torch.cat([dst, diagonal]), torch.cat([src, diagonal])
    received = torch.zeros(n, dtype=weight.dtype).index_add_(0, dst, weight)
    values = torch.cat([weight, -received])
    coo = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), values, (n, n), check_invariants=False
    ).coalesce()  # repeated edges add up
    with warnings.catch_warnings():
        # "CSR support is in beta": CSR halves the product's time against COO on 2 threads
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


class SparseMixer:
    """Applies a round's mixing in place; caches the matrix while edges and mask stay the same."""

    def __init__(self) -> None:
        self._edges: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._edges_of: npt.NDArray[np.int64] | None = None
        self._matrix: torch.Tensor | None = None
        self._buffers: dict[int, torch.Tensor] = {}

    def mix(self, x: torch.Tensor, x_hat: torch.Tensor, plan: RoundPlan, *, gamma: float) -> None:
        """``x += gamma * M @ x_hat`` for the edges the plan mixes (Byzantine receivers mix
        none); rows that mix nothing are left exactly as they were."""
        matrix = self._matrix_for(plan, x.dtype)
        if x.dtype == torch.float64:
            x.addmm_(matrix, x_hat, alpha=gamma)
            return
        wide, wide_hat = self._buffer(0, x), self._buffer(1, x)
        wide.copy_(x)
        wide_hat.copy_(x_hat)
        wide.addmm_(matrix, wide_hat, alpha=gamma)
        x.copy_(wide)

    def _buffer(self, slot: int, like: torch.Tensor) -> torch.Tensor:
        buffer = self._buffers.get(slot)
        if buffer is None or buffer.shape != like.shape:
            buffer = self._buffers[slot] = torch.empty(like.shape, dtype=torch.float64)
        return buffer

    def _matrix_for(self, plan: RoundPlan, dtype: torch.dtype) -> torch.Tensor:
        if self._edges is None or self._edges_of is not plan.src:
            # the planner hands out the same arrays for as long as the schedule's edges last
            self._edges = (
                torch.from_numpy(plan.src),
                torch.from_numpy(plan.dst),
                mixing_weights(plan, dtype),
            )
            self._edges_of, self._matrix = plan.src, None
        src, dst, weight = self._edges
        use = plan.mix & ~plan.byzantine[plan.dst]
        n = len(plan.alive)
        if use.all():
            if self._matrix is None:
                self._matrix = choco_matrix(src, dst, weight, n)
            return self._matrix
        kept = torch.from_numpy(np.flatnonzero(use))
        return choco_matrix(src[kept], dst[kept], weight[kept], n)
