"""The publish half of a CHOCO round, batched and per peer, for the two engines.

Every live peer advances its public copy with the frame it publishes, through
:func:`protocol.choco.next_public_copy`: ``x_hat + Q(x - x_hat)`` with its codec and frame seed,
exactly what :meth:`protocol.choco.ChocoSender.step` computes from the frame's bytes. A keyframe
then carries that same x_hat raw: for float32 models this changes nothing in the copy (it only
resynchronises receivers and costs 4 bytes per parameter); the float64 consensus task idealises
the keyframe as exact, so the theory checks are not limited by fp32 rounding. Down peers publish
nothing and keep their x_hat.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from protocol.choco import next_public_copy
from protocol.codecs.base import Codec
from sim import kernels
from sim.plan import RoundPlan

__all__ = ["publish_batch", "publish_one"]


def publish_batch(
    x_hat: torch.Tensor,
    x: torch.Tensor,
    plan: RoundPlan,
    codec: Codec,
    *,
    scratch: Callable[[], torch.Tensor] | None = None,
) -> None:
    """Advance the public copies [N, P] in place for this round's frames.

    The ``raw`` codec, whose ``compress`` is the identity, takes the same two operations
    without allocating, ``x_hat += (x - x_hat)``: on the CPU in one fused pass, elsewhere in
    the working memory (x_hat's shape and dtype) that ``scratch`` returns, called only then.
    """
    if plan.alive.all():
        if codec.spec.name == "raw" and kernels.usable(x_hat, x) and x.dtype == x_hat.dtype:
            kernels.publish_raw(x_hat, x)
            return
        if scratch is not None and codec.spec.name == "raw":
            x_hat.add_(torch.sub(x, x_hat, out=scratch()))
            return
        next_public_copy(x, x_hat, codec, seed=plan.seeds, out=x_hat)
    elif plan.alive.any():
        peers = np.flatnonzero(plan.alive)
        rows = torch.from_numpy(peers).to(x_hat.device)
        seeds = [plan.seeds[i] for i in peers.tolist()]
        x_hat[rows] = next_public_copy(x[rows], x_hat[rows], codec, seed=seeds)


def publish_one(
    x_hat: torch.Tensor, x: torch.Tensor, plan: RoundPlan, *, peer: int, codec: Codec
) -> torch.Tensor:
    """The new public copy [P] of one live peer after its frame this round."""
    return next_public_copy(x, x_hat, codec, seed=plan.seeds[peer])
