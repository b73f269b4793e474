"""Tasks for gossip learning: data, partitions, models on flat vectors, and the task bundle.

Submodules: ``data`` (datasets, IDX loaders, FedProx synthetic), ``partition``, ``models``
(logreg, mlp, cnn on flat vectors), ``module`` (a user's torch.nn.Module on flat vectors),
``optim`` (optimizers on flat vectors), ``objective`` (losses and metrics), ``plugin`` and
``userdata`` (user plug-ins), ``learner`` (local training and evaluation), ``task`` (TaskSpec,
Task, build_task).

This package is a leaf: it imports torch, numpy and ``protocol``, never the daemon's runtime,
transport or launcher, so that the simulator and the daemon share it. Its names load on first
use (PEP 562): the configuration checks plug-in names through the torch-free ``plugin`` module.
The partition function is ``peer.tasks.partition.partition`` (its module has the same name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.lazy import lazy_exports

if TYPE_CHECKING:
    from peer.tasks.dataset import Dataset, PeerData
    from peer.tasks.errors import DataError, DatasetMissing
    from peer.tasks.models import FlatModel, model_from_spec
    from peer.tasks.partition import PartitionReport
    from peer.tasks.task import BUILTIN_TASKS, Task, TaskSpec, build_task

_HOME_OF = {
    "BUILTIN_TASKS": "peer.tasks.task",
    "DataError": "peer.tasks.errors",
    "Dataset": "peer.tasks.dataset",
    "DatasetMissing": "peer.tasks.errors",
    "FlatModel": "peer.tasks.models",
    "PartitionReport": "peer.tasks.partition",
    "PeerData": "peer.tasks.dataset",
    "Task": "peer.tasks.task",
    "TaskSpec": "peer.tasks.task",
    "build_task": "peer.tasks.task",
    "model_from_spec": "peer.tasks.models",
}

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
]

__getattr__, __dir__ = lazy_exports("peer.tasks", _HOME_OF, globals())
