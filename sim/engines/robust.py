"""Mixing of all N peers under a robust aggregation rule, batched by in-degree.

The robust rules of :mod:`protocol.aggregation` need each receiver's neighbours side by side
([K, P]), not a running sum, so receivers are grouped by how many messages they mix this round:
each group of n receivers with K messages is one batched call on [n, K, P], the messages in the
order the loop engine (and a daemon) takes them. Each receiver's result is independent of the
others in its batch, so the vector and loop engines agree (tests/sim/test_aggregation_parity.py).
"""

from __future__ import annotations

import numpy as np
import torch

from protocol.aggregation import aggregate
from protocol.mixing import choco_update
from protocol.spec import Spec
from sim.engines.mixer import edge_weights
from sim.plan import RoundPlan

__all__ = ["robust_mix"]


def robust_mix(
    x: torch.Tensor, x_hat: torch.Tensor, plan: RoundPlan, *, rule: Spec, gamma: float
) -> None:
    """Mix ``x`` [N, P] in place under ``rule`` with the public copies ``x_hat`` [N, P] of the
    edges the plan mixes (Byzantine receivers mix none); rows that mix nothing stay as they are."""
    use = np.flatnonzero(plan.mix & ~plan.byzantine[plan.dst])
    order = use[np.argsort(plan.dst[use], kind="stable")]  # receiver-major, senders in order
    receivers, first, counts = np.unique(plan.dst[order], return_index=True, return_counts=True)
    device = x.device
    weights = edge_weights(plan, x.dtype, device)
    for k in np.unique(counts).tolist():
        group = counts == k
        edges = order[first[group][:, None] + np.arange(k)]  # [n, K]
        rows = torch.from_numpy(receivers[group]).to(device)
        copies = x_hat[torch.from_numpy(plan.src[edges]).to(device)]  # [n, K, P]
        own = x_hat[rows]
        mixed, total = aggregate(rule, own, weights[torch.from_numpy(edges).to(device)], copies)
        x[rows] = choco_update(x[rows], own, mixed, total, gamma=gamma)
