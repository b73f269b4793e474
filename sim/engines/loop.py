"""The reference engine: one peer at a time, [P] tensors, through the same protocol functions.

It is what a swarm of daemons does, one after the other: the parity oracle for the vector
engine and its speed baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from protocol.aggregation import aggregate
from protocol.mixing import choco_update
from sim.engines.base import EngineContext, forged_frames
from sim.engines.choco import publish_one
from sim.engines.mixer import edge_weights
from sim.engines.privacy import privatize_peer
from sim.plan import RoundPlan

__all__ = ["LoopEngine"]


class LoopEngine:
    """Per-peer local SGD, per-peer compression with that peer's seed, per-peer mixing."""

    name = "loop"

    def __init__(self, context: EngineContext, x0: torch.Tensor) -> None:
        self.ctx = context
        self.x = [row.clone() for row in x0]
        self.x_hat = [torch.zeros_like(row) for row in x0]

    def params(self) -> torch.Tensor:
        return torch.stack(self.x)

    def step(self, plan: RoundPlan) -> torch.Tensor:
        loss = torch.full((len(self.x),), float("nan"))
        for peer in np.flatnonzero(plan.alive).tolist():
            loss[peer] = self._train(peer, plan)
        forged = self._forged(plan)
        for peer in np.flatnonzero(plan.alive).tolist():
            target = forged.get(peer, self.x[peer])
            self.x_hat[peer] = publish_one(
                self.x_hat[peer], target, plan, peer=peer, codec=self.ctx.codec
            )
        use = np.flatnonzero(plan.mix & ~plan.byzantine[plan.dst])
        # Receiver-major order, then one slice per peer: the edges whose messages it mixes.
        use = use[np.argsort(plan.dst[use], kind="stable")]
        bounds = np.searchsorted(plan.dst[use], np.arange(len(self.x) + 1))
        all_weights = edge_weights(plan, self.x[0].dtype)
        for peer in np.flatnonzero(plan.alive).tolist():
            incoming = use[bounds[peer] : bounds[peer + 1]]
            if len(incoming) == 0:
                continue  # nothing received: all weight stays on self
            # what the daemon does (peer.runtime.gossip.mix_received): senders in node order
            weights = all_weights[torch.from_numpy(incoming)]
            copies = torch.stack([self.x_hat[j] for j in plan.src[incoming].tolist()])
            mixed, total = aggregate(self.ctx.aggregator, self.x_hat[peer], weights, copies)
            self.x[peer] = choco_update(
                self.x[peer], self.x_hat[peer], mixed, total, gamma=self.ctx.gamma
            )
        return loss

    def _forged(self, plan: RoundPlan) -> dict[int, torch.Tensor]:
        """The attackers' frames, from the copies as they were before anyone published."""
        if self.ctx.byzantine is None:
            return {}
        return forged_frames(
            plan,
            self.ctx.byzantine.attack,
            seed=self.ctx.seed,
            own=lambda peer: self.x[peer],
            copy=lambda peer: self.x_hat[peer],
        )

    def _train(self, peer: int, plan: RoundPlan) -> float:
        trainer = self.ctx.trainer
        steps = plan.steps[peer : peer + 1]
        if trainer is None or steps[0] == 0:
            return float("nan")
        before = self.x[peer]
        after, loss = trainer.train(before, np.array([peer]), steps, round=plan.round)
        self.x[peer] = privatize_peer(self.ctx, before, after, plan, peer)
        return float(loss.reshape(-1)[0])
