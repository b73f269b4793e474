"""The task of a run (data, model, starting parameters), from peer's task registry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from peer.tasks import Dataset, TaskSpec, build_task
from peer.tasks.recipe import Recipe
from peer.tasks.task import Model
from sim.config import SimConfig
from sim.training import Trainer

__all__ = ["SimTask", "load_task"]


@dataclass(frozen=True, kw_only=True)
class SimTask:
    name: str
    init_params: torch.Tensor
    """[N, P] starting models (float64 for consensus, the model's dtype otherwise)."""
    model: Model | None
    test: Dataset | None
    trainer: Trainer | None
    recipe: Recipe = field(default_factory=Recipe)
    tests: tuple[Dataset, ...] | None = None
    """Per-peer test sets (data plug-ins): peer i is evaluated on its own."""
    report: dict[str, float] = field(default_factory=dict)
    """Partition summary: per-peer sizes and label skew, for summary.json."""

    def to(self, device: torch.device) -> SimTask:
        """This task with its data, test sets and starting models on ``device`` (itself if
        they are there already)."""
        if self.init_params.device == device:
            return self
        trainer = self.trainer
        if trainer is not None:
            trainer = dataclasses.replace(trainer, data=trainer.data.to(device))
        return dataclasses.replace(
            self,
            init_params=self.init_params.to(device),
            test=None if self.test is None else _dataset_to(self.test, device),
            trainer=trainer,
            tests=None if self.tests is None else tuple(_dataset_to(t, device) for t in self.tests),
        )


def _dataset_to(data: Dataset, device: torch.device) -> Dataset:
    return Dataset(data.x.to(device), data.y.to(device), data.num_classes)


def load_task(config: SimConfig) -> SimTask:
    """Build the task named in ``config``; DataError (a ConfigError) if data are missing."""
    spec = TaskSpec(
        task=config.task,
        model=config.model or "logreg",
        partition=config.partition,
        peers=config.peers,
        seed=config.seed,
        data_path=None if config.data_path is None else Path(config.data_path),
        dim=config.dim,
        data=config.data,
        loss=config.loss,
        metric=config.metric,
        optimizer=config.optimizer,
        lr=config.lr,
    )
    task = build_task(spec)
    trainer = None
    if task.model is not None and task.train is not None:
        trainer = Trainer(
            model=task.model,
            data=task.train,
            steps=config.local_steps,
            batch_size=config.batch_size,
            lr=config.lr,
            seed=config.seed,
            recipe=task.recipe,
        )
    report = task.partition_report
    summary = report.summary() if report is not None else {}
    return SimTask(
        name=config.task,
        init_params=task.init_params(seed=config.seed),
        model=task.model,
        test=task.test,
        trainer=trainer,
        report=summary,
        recipe=task.recipe,
        tests=task.tests,
    )
