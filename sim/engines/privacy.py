"""Differential privacy in the engines: the same :mod:`protocol.privacy` calls a daemon makes.

Each peer that trains this round (a trainer and at least one local step) has its new model
replaced by ``before + clip(after - before) + noise`` with the noise of
:func:`protocol.privacy.dp_seed` ``(run seed, round, peer)``: the vector engine on the rows that
trained, the loop engine one peer at a time, with identical results per peer.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from protocol.privacy import dp_seed, privatize, privatize_rows
from sim.engines.base import EngineContext
from sim.plan import RoundPlan

__all__ = ["privatize_peer", "privatize_trained", "trained"]


def trained(context: EngineContext, plan: RoundPlan) -> npt.NDArray[np.bool_]:
    """[N] the peers whose data this round's step touches, so that add noise."""
    if context.trainer is None:
        return np.zeros(len(plan.steps), dtype=bool)
    return np.asarray(plan.steps > 0)


def privatize_trained(
    context: EngineContext, before: torch.Tensor, x: torch.Tensor, plan: RoundPlan
) -> None:
    """Replace, in place, the rows of ``x`` [N, P] that trained by their released models."""
    params = context.privacy
    peers = np.flatnonzero(trained(context, plan))
    if params is None or len(peers) == 0:
        return
    rows = torch.from_numpy(peers).to(x.device)
    seeds = [dp_seed(context.seed, round=plan.round, peer=p) for p in peers.tolist()]
    x[rows] = privatize_rows(before[rows], x[rows], params, seeds=seeds)


def privatize_peer(
    context: EngineContext, before: torch.Tensor, after: torch.Tensor, plan: RoundPlan, peer: int
) -> torch.Tensor:
    """The released model [P] of ``peer`` after it trained from ``before`` to ``after``."""
    params = context.privacy
    if params is None or not trained(context, plan)[peer]:
        return after
    seed = dp_seed(context.seed, round=plan.round, peer=peer)
    return privatize(before, after, params, seed=seed)
