"""Test-set evaluation of every peer's model and of the average model."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from peer.tasks.learner import evaluate
from sim.tasks import SimTask

__all__ = ["Evaluator"]


class Evaluator:
    """Accuracy and loss on the held-out test set; a no-op for tasks without one."""

    def __init__(self, task: SimTask) -> None:
        self.task = task

    @property
    def has_accuracy(self) -> bool:
        return self.task.model is not None and self.task.test is not None

    def evaluate(
        self,
        x: torch.Tensor,
        alive: npt.NDArray[np.bool_],
        honest: npt.NDArray[np.bool_] | None = None,
    ) -> dict[str, float | None]:
        """acc_mean/min/max and test_loss over the live peers; acc_avg_model of the mean of all
        (``acc_*`` hold the task's metric, accuracy unless configured otherwise); with an
        ``honest`` mask, acc_honest_mean/worst over the live honest peers."""
        model, test, recipe = self.task.model, self.task.test, self.task.recipe
        if model is None or test is None:
            return {}
        live = np.flatnonzero(alive)
        rows = torch.from_numpy(live)
        if self.task.tests is None:
            metric, loss = evaluate(model, x[rows], test, recipe=recipe)
        else:
            pairs = [
                evaluate(model, x[peer : peer + 1], self.task.tests[peer], recipe=recipe)
                for peer in live.tolist()
            ]
            metric = torch.cat([m for m, _ in pairs])
            loss = torch.cat([v for _, v in pairs])
        avg, _ = evaluate(model, x.mean(dim=0, keepdim=True), test, recipe=recipe)
        fields: dict[str, float | None] = {}
        if honest is not None:
            fields.update(self._honest(metric, honest[live]))
        return fields | {
            "acc_mean": float(metric.mean()),
            "acc_min": float(metric.min()),
            "acc_max": float(metric.max()),
            "acc_avg_model": float(avg[0]),
            "test_loss": float(loss.mean()),
        }

    def _honest(self, metric: torch.Tensor, honest: npt.NDArray[np.bool_]) -> dict[str, float]:
        """The metric over the honest ones of the evaluated peers (``honest``: their mask)."""
        kept = metric[torch.from_numpy(honest).to(metric.device)]
        if len(kept) == 0:
            return {}
        higher = self.task.recipe.metric.higher_is_better
        worst = kept.min() if higher else kept.max()
        return {"acc_honest_mean": float(kept.mean()), "acc_honest_worst": float(worst)}
