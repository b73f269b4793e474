"""Test-set evaluation of every peer's model and of the average model."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from peer.learner import evaluate
from sim.tasks import SimTask

__all__ = ["Evaluator"]


class Evaluator:
    """Accuracy and loss on the held-out test set; a no-op for tasks without one."""

    def __init__(self, task: SimTask) -> None:
        self.task = task

    @property
    def has_accuracy(self) -> bool:
        return self.task.model is not None and self.task.test is not None

    def evaluate(self, x: torch.Tensor, alive: npt.NDArray[np.bool_]) -> dict[str, float | None]:
        """acc_mean/min/max and test_loss over the live peers; acc_avg_model of the mean of all."""
        model, test = self.task.model, self.task.test
        if model is None or test is None:
            return {}
        rows = torch.from_numpy(np.flatnonzero(alive))
        acc, loss = evaluate(model, x[rows], test)
        avg_acc, _ = evaluate(model, x.mean(dim=0, keepdim=True), test)
        return {
            "acc_mean": float(acc.mean()),
            "acc_min": float(acc.min()),
            "acc_max": float(acc.max()),
            "acc_avg_model": float(avg_acc[0]),
            "test_loss": float(loss.mean()),
        }
