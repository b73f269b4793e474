"""Tasks for gossip learning: data, partitions, flat-parameter models, and the task bundle.

Submodules: ``data`` (datasets, IDX loaders, FedProx synthetic), ``partition``, ``models``
(logreg, mlp, cnn on flat vectors), ``task`` (TaskSpec, Task, build_task, plug-ins).
"""

from __future__ import annotations

from peer.tasks.dataset import Dataset, PeerData
from peer.tasks.errors import DataError, DatasetMissing
from peer.tasks.models import FlatModel, model_from_spec
from peer.tasks.partition import PartitionReport, partition
from peer.tasks.task import BUILTIN_TASKS, Task, TaskSpec, build_task

__all__ = [
    "BUILTIN_TASKS",
    "DataError",
    "Dataset",
    "DatasetMissing",
    "FlatModel",
    "PartitionReport",
    "PeerData",
    "Task",
    "TaskSpec",
    "build_task",
    "model_from_spec",
    "partition",
]
