"""The vectorised engine: all N peers in [N, P] tensors, one batched call per stage."""

from __future__ import annotations

import numpy as np
import torch

from protocol.mixing import gossip_update, sparse_neighbour_mix
from sim.engines.base import EngineContext, attacked
from sim.engines.choco import publish_batch
from sim.plan import RoundPlan

__all__ = ["VectorEngine", "mixing_weights"]


class VectorEngine:
    """Batched local SGD, batched compression, and mixing as one sparse product per round."""

    name = "vector"

    def __init__(self, context: EngineContext, x0: torch.Tensor) -> None:
        self.ctx = context
        self.x = x0.clone()
        self.x_hat = torch.zeros_like(x0)
        """Every peer's public copy; in-sync receivers hold exactly this row."""
        self._edges: tuple[int, torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def params(self) -> torch.Tensor:
        return self.x

    def step(self, plan: RoundPlan) -> torch.Tensor:
        loss = self._train(plan)
        publish_batch(self.x_hat, self._targets(plan), plan, self.ctx.codec)
        self._mix(plan)
        return loss

    def _train(self, plan: RoundPlan) -> torch.Tensor:
        loss = torch.full((self.x.shape[0],), float("nan"))
        trainer = self.ctx.trainer
        if trainer is None or not plan.steps.any():
            return loss
        if plan.steps.all():
            self.x, loss = trainer.train(
                self.x, np.arange(len(plan.steps)), plan.steps, round=plan.round
            )
            return loss
        peers = np.flatnonzero(plan.steps)
        rows = torch.from_numpy(peers)
        new, part = trainer.train(self.x[rows], peers, plan.steps[peers], round=plan.round)
        self.x[rows] = new
        loss[rows] = part.to(loss.dtype)
        return loss

    def _targets(self, plan: RoundPlan) -> torch.Tensor:
        """What each peer publishes: its model, or the attack for Byzantine peers."""
        attack = self.ctx.byzantine
        if attack is None or not plan.byzantine.any():
            return self.x
        targets = self.x.clone()
        for peer in np.flatnonzero(plan.byzantine).tolist():
            targets[peer] = attacked(
                self.x[peer], attack, seed=self.ctx.seed, round=plan.round, peer=peer
            )
        return targets

    def _edge_tensors(self, plan: RoundPlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = id(plan.src)
        if self._edges is None or self._edges[0] != key:
            self._edges = (
                key,
                torch.from_numpy(plan.src),
                torch.from_numpy(plan.dst),
                mixing_weights(plan, self.x.dtype),
            )
        return self._edges[1], self._edges[2], self._edges[3]

    def _mix(self, plan: RoundPlan) -> None:
        src, dst, weight = self._edge_tensors(plan)
        use = plan.mix & ~plan.byzantine[plan.dst]
        mask = None if use.all() else torch.from_numpy(use)
        # Mixing runs in float64 and rounds once (see _weights for why it is then exact).
        x_hat = self.x_hat.to(torch.float64)
        mixed, weight_sum = sparse_neighbour_mix(src, dst, weight, x_hat, mask)
        x = gossip_update(self.x.to(torch.float64), x_hat, mixed, weight_sum, gamma=self.ctx.gamma)
        self.x = x.to(self.x.dtype)


def mixing_weights(plan: RoundPlan, dtype: torch.dtype) -> torch.Tensor:
    """Mixing weights at the model's precision, widened to float64 for the mix.

    The order in which a peer's neighbours are summed differs between the engines (a sparse
    product here, a dot product in the loop engine). With float32 weights and float32 copies,
    every product is exact in float64 and the float64 sums round to the same float32 result
    in both engines, so a quantising codec has no last-bit difference to amplify.
    """
    return torch.from_numpy(plan.weight).to(dtype).to(torch.float64)
