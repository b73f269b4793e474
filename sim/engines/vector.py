"""The vectorised engine: all N peers in [N, P] tensors, one batched call per stage."""

from __future__ import annotations

import numpy as np
import torch

from sim.engines.base import EngineContext, forged_frames
from sim.engines.choco import publish_batch
from sim.engines.mixer import SparseMixer
from sim.engines.privacy import privatize_trained
from sim.engines.robust import robust_mix
from sim.plan import RoundPlan

__all__ = ["VectorEngine"]


class VectorEngine:
    """Batched local SGD, batched compression, and batched mixing with a daemon's arithmetic."""

    name = "vector"

    def __init__(self, context: EngineContext, x0: torch.Tensor) -> None:
        self.ctx = context
        self.x = x0.clone()
        self.x_hat = torch.zeros_like(x0)
        """Every peer's public copy; in-sync receivers hold exactly this row."""
        self._mixer = SparseMixer()
        self._scratch: torch.Tensor | None = None
        """Working memory of the raw codec's publish step (no allocation per round)."""

    def _publish_memory(self) -> torch.Tensor:
        """The raw codec's working memory where the fused kernel cannot run, made on first use
        (a model-sized buffer: reserved up front, it would hold a device's memory for nothing)."""
        if self._scratch is None:
            self._scratch = torch.empty_like(self.x_hat)
        return self._scratch

    def params(self) -> torch.Tensor:
        return self.x

    def step(self, plan: RoundPlan) -> torch.Tensor:
        timer = self.ctx.timer
        with timer.phase("train"):
            before = None if self.ctx.privacy is None else self.x.clone()
            loss = self._train(plan)
            if before is not None:
                privatize_trained(self.ctx, before, self.x, plan)
        with timer.phase("compress"):
            targets = self._targets(plan)
            publish_batch(self.x_hat, targets, plan, self.ctx.codec, scratch=self._publish_memory)
        with timer.phase("mix"):
            if self.ctx.aggregator.name == "mean":
                self._mixer.mix(self.x, self.x_hat, plan, gamma=self.ctx.gamma)
            else:
                rule, gamma = self.ctx.aggregator, self.ctx.gamma
                robust_mix(self.x, self.x_hat, plan, rule=rule, gamma=gamma)
        return loss

    def _train(self, plan: RoundPlan) -> torch.Tensor:
        loss = torch.full((self.x.shape[0],), float("nan"), device=self.x.device)
        trainer = self.ctx.trainer
        if trainer is None or not plan.steps.any():
            return loss
        if plan.steps.all():
            # in place: a fresh [N, P] result every round would cost page faults
            _, loss = trainer.train(
                self.x, np.arange(len(plan.steps)), plan.steps, round=plan.round, inplace=True
            )
            return loss
        peers = np.flatnonzero(plan.steps)
        rows = torch.from_numpy(peers).to(self.x.device)
        new, part = trainer.train(self.x[rows], peers, plan.steps[peers], round=plan.round)
        self.x[rows] = new
        loss[rows] = part.to(loss.dtype)
        return loss

    def _targets(self, plan: RoundPlan) -> torch.Tensor:
        """What each peer publishes: its model, or the attack for forging peers."""
        attack = self.ctx.byzantine
        if attack is None or not plan.byzantine.any():
            return self.x
        frames = forged_frames(
            plan,
            attack.attack,
            seed=self.ctx.seed,
            own=lambda peer: self.x[peer],
            copy=lambda peer: self.x_hat[peer],
        )
        targets = self.x.clone()
        for peer, frame in frames.items():
            targets[peer] = frame
        return targets
