"""A task bundles what a run trains on: model, per-peer training data, test set, initial state.

Built-in tasks: ``consensus`` (random float64 vectors of size ``dim``, one per peer; no model, no
data: pure gossip averaging), ``synthetic`` (FedProx Synthetic(alpha, beta), already split per
peer), ``fmnist`` (Fashion-MNIST) and ``mnist`` (IDX files under ``data_path``).

Initial parameters: in learning tasks every peer starts from the SAME model, ``model.init(seed)``,
as is usual in gossip learning (a shared start keeps early averaging from mixing unrelated
networks). In ``consensus`` each peer starts from its own standard normal vector.

Plug-in tasks: ``task="pkg.module:function"`` imports ``pkg.module`` and calls
``function(spec: TaskSpec) -> Task``. The contract: return a :class:`Task` with ``peers ==
spec.peers``; for a learning task a FlatModel, a PeerData with one shard per peer whose inputs
match ``model.input_dim`` and labels ``model.num_classes``, and a test Dataset; for a pure
averaging task ``model=None`` and ``dim``. Task validates this on construction.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch

from peer.config.specs import BUILTIN_TASKS, check_task
from peer.tasks.dataset import Dataset, PeerData
from peer.tasks.idx import FASHION_MNIST_ROOT, load_raw_split
from peer.tasks.models import FlatModel, model_from_spec
from peer.tasks.partition import PartitionReport, partition
from peer.tasks.synthetic import synthetic_peer_data
from protocol.defaults import CONSENSUS_DIM
from protocol.errors import ConfigError
from protocol.spec import parse_spec

__all__ = ["BUILTIN_TASKS", "Task", "TaskSpec", "build_task"]

_SYNTHETIC_DIM, _SYNTHETIC_CLASSES = 60, 10


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """What to build. ``dim`` is for consensus; ``alpha``, ``beta``, ``samples_per_peer`` and
    ``test_samples`` for synthetic; ``data_path`` overrides where IDX files are read from."""

    task: str
    peers: int
    model: str = "logreg"
    partition: str = "iid"
    seed: int = 0
    data_path: Path | None = None
    dim: int = CONSENSUS_DIM
    alpha: float = 1.0
    beta: float = 1.0
    samples_per_peer: int = 100
    test_samples: int = 2000

    def __post_init__(self) -> None:
        check_task(self.task)
        for name in ("peers", "dim", "samples_per_peer", "test_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.alpha < 0 or self.beta < 0:
            raise ConfigError(f"alpha and beta must be >= 0, got {self.alpha}, {self.beta}")
        parse_spec(self.model), parse_spec(self.partition)  # syntax errors surface here
        if self.task == "mnist" and self.data_path is None:
            raise ConfigError("task mnist needs a data path holding the four MNIST IDX files")
        if self.task == "synthetic" and parse_spec(self.partition).name != "iid":
            raise ConfigError(
                f"synthetic data comes split per peer; use partition iid, not {self.partition!r}"
            )


def peer_histograms(data: PeerData) -> torch.Tensor:
    """Label counts per peer [N, C], int64."""
    owner = torch.repeat_interleave(torch.arange(data.num_peers), data.sizes)
    hist = torch.zeros(data.num_peers, data.num_classes, dtype=torch.int64)
    return hist.index_put_((owner, data.y), torch.ones_like(data.y), accumulate=True)


@dataclass(frozen=True, kw_only=True)
class Task:
    """A built task; see the module docstring for the plug-in contract."""

    name: str
    peers: int
    model: FlatModel | None = None
    train: PeerData | None = None
    test: Dataset | None = None
    dim: int | None = None

    def __post_init__(self) -> None:
        if self.model is None:
            if self.train is not None or self.test is not None or not self.dim or self.dim < 1:
                raise ConfigError(f"task {self.name}: without a model, give only dim >= 1")
            return
        if self.train is None or self.test is None:
            raise ConfigError(f"task {self.name}: a model needs train and test data")
        if self.train.num_peers != self.peers:
            raise ConfigError(
                f"task {self.name}: {self.train.num_peers} shards for {self.peers} peers"
            )
        for ds in (self.train, self.test):
            if ds.x.shape[1] != self.model.input_dim or ds.num_classes != self.model.num_classes:
                raise ConfigError(
                    f"task {self.name}: data of dimension {ds.x.shape[1]} with {ds.num_classes} "
                    f"classes does not fit model {self.model.name}"
                )

    @property
    def num_params(self) -> int:
        return self.model.num_params if self.model is not None else int(self.dim or 0)

    @property
    def dtype(self) -> torch.dtype:
        """float64 for consensus (theory checks need it), float32 for learning tasks."""
        return torch.float64 if self.model is None else torch.float32

    @property
    def partition_report(self) -> PartitionReport | None:
        """Per-peer sizes and label histograms, None for consensus."""
        if self.train is None:
            return None
        return PartitionReport(self.train.sizes, peer_histograms(self.train))

    def init_params(self, *, seed: int) -> torch.Tensor:
        """Initial parameters [N, P]: one shared model init, or per-peer normals (consensus).

        >>> Task(name="consensus", peers=3, dim=2).init_params(seed=0).shape
        torch.Size([3, 2])
        """
        if self.model is None:
            g = torch.Generator().manual_seed(seed)
            return torch.randn(self.peers, self.num_params, generator=g, dtype=torch.float64)
        return self.model.init(seed=seed).expand(self.peers, -1).clone()


def _idx_task(spec: TaskSpec) -> Task:
    root = spec.data_path if spec.data_path is not None else FASHION_MNIST_ROOT
    train_raw, test_raw = load_raw_split(root, dataset=spec.task)
    stats = train_raw.pixel_stats()
    parts = partition(train_raw.labels, spec.peers, spec.partition, seed=spec.seed)
    train = train_raw.to_dataset(stats, rows=torch.cat(parts))
    sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    data = PeerData(train.x, train.y, offsets, train.num_classes)
    model = model_from_spec(spec.model, data.dim, data.num_classes)
    return Task(
        name=spec.task, peers=spec.peers, model=model, train=data, test=test_raw.to_dataset(stats)
    )


def _plugin_task(spec: TaskSpec) -> Task:
    module_name, _, func_name = spec.task.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load plug-in task {spec.task!r}: {exc}") from exc
    task = func(spec)
    if not isinstance(task, Task) or task.peers != spec.peers:
        raise ConfigError(
            f"plug-in {spec.task!r} must return a Task for {spec.peers} peers, got {task!r}"
        )
    return task


def build_task(spec: TaskSpec) -> Task:
    """Load or generate the task's data and model (see the module docstring)."""
    if spec.task == "consensus":
        return Task(name="consensus", peers=spec.peers, dim=spec.dim)
    if spec.task == "synthetic":
        data, test = synthetic_peer_data(
            spec.alpha,
            spec.beta,
            spec.peers,
            samples_per_peer=spec.samples_per_peer,
            dim=_SYNTHETIC_DIM,
            classes=_SYNTHETIC_CLASSES,
            test_samples=spec.test_samples,
            seed=spec.seed,
        )
        model = model_from_spec(spec.model, data.dim, data.num_classes)
        return Task(name="synthetic", peers=spec.peers, model=model, train=data, test=test)
    if spec.task in ("fmnist", "mnist"):
        return _idx_task(spec)
    return _plugin_task(spec)
