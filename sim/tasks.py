"""The task of a run (data, model, starting parameters), from peer's task registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from peer.tasks import Dataset, FlatModel, TaskSpec, build_task
from sim.config import SimConfig
from sim.training import Trainer

__all__ = ["SimTask", "load_task"]


@dataclass(frozen=True, kw_only=True)
class SimTask:
    name: str
    init_params: torch.Tensor
    """[N, P] starting models (float64 for consensus, the model's dtype otherwise)."""
    model: FlatModel | None
    test: Dataset | None
    trainer: Trainer | None
    report: dict[str, float] = field(default_factory=dict)
    """Partition summary: per-peer sizes and label skew, for summary.json."""


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
    )
