"""A task bundles what a run trains on: model, per-peer training data, test set, initial state.

Built-in tasks: ``consensus`` (random float64 vectors of size ``dim``, one per peer; no model, no
data: pure gossip averaging), ``synthetic`` (FedProx Synthetic(alpha, beta), already split per
peer), ``fmnist`` (Fashion-MNIST) and ``mnist`` (IDX files under ``data_path``).

Initial parameters: in learning tasks every peer starts from the SAME model, ``model.init(seed)``,
as is usual in gossip learning (a shared start keeps early averaging from mixing unrelated
networks). In ``consensus`` each peer starts from its own standard normal vector.

User data and models: ``data="pkg.module:function[:key=value,...]"`` (see
:mod:`peer.tasks.userdata`) replaces the task: the function gives every peer its own train and test
sets, and peer ``i`` is evaluated on its own test set. ``model`` names a built-in model or a
plug-in module (:mod:`peer.tasks.module`); ``loss``, ``metric``, ``optimizer`` and ``lr`` make the
task's :class:`~peer.tasks.recipe.Recipe`. A plug-in model is run on a few samples when the task
is built, so a misfit fails before any round (:func:`~peer.tasks.recipe.check_model`).

Plug-in tasks: ``task="pkg.module:function"`` imports ``pkg.module`` and calls
``function(spec: TaskSpec) -> Task``. The contract: return a :class:`Task` with ``peers ==
spec.peers``; for a learning task a FlatModel, a PeerData with one shard per peer whose inputs
match ``model.input_dim`` and labels ``model.num_classes``, and a test Dataset; for a pure
averaging task ``model=None`` and ``dim``. Task validates this on construction.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from peer.tasks.dataset import Dataset, PeerData
from peer.tasks.idx import FASHION_MNIST_ROOT, RawIdx, load_raw_split
from peer.tasks.models import FlatModel, model_from_spec
from peer.tasks.module import ModuleModel
from peer.tasks.partition import PartitionReport, partition
from peer.tasks.plugin import is_plugin
from peer.tasks.recipe import Recipe, check_model
from peer.tasks.specs import BUILTIN_TASKS, check_task
from peer.tasks.synthetic import synthetic_peer_data
from peer.tasks.userdata import data_ref, load_peer_data, with_classes
from protocol.defaults import CONSENSUS_DIM, LEARNING_RATE
from protocol.errors import ConfigError
from protocol.spec import parse_spec

__all__ = ["BUILTIN_TASKS", "Model", "Task", "TaskSpec", "build_model", "build_task"]

Model = FlatModel | ModuleModel

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
    data: str | None = None
    """A data plug-in (or ``npz:path=FILE``); replaces ``task``."""
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    optimizer: str = "sgd"
    lr: float = LEARNING_RATE

    def __post_init__(self) -> None:
        if self.data is not None:
            data_ref(self.data)  # syntax errors surface here
        else:
            check_task(self.task)
        for name in ("peers", "dim", "samples_per_peer", "test_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.alpha < 0 or self.beta < 0:
            raise ConfigError(f"alpha and beta must be >= 0, got {self.alpha}, {self.beta}")
        parse_spec(self.partition)  # syntax errors surface here
        if not is_plugin(self.model):
            parse_spec(self.model)
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
    model: Model | None = None
    train: PeerData | None = None
    test: Dataset | None = None
    dim: int | None = None
    recipe: Recipe = field(default_factory=Recipe)
    tests: tuple[Dataset, ...] | None = None
    """Per-peer test sets (data plug-ins): peer i is evaluated on ``tests[i]``; ``test`` is
    then all of them together."""

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
        if self.tests is not None and len(self.tests) != self.peers:
            raise ConfigError(f"task {self.name}: {len(self.tests)} test sets for {self.peers}")
        if isinstance(self.model, ModuleModel):
            return
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
        if self.train is None or self.train.regression:
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
    rows = torch.cat(parts)
    # the peers' rows gathered once, in uint8: training gathers its batches from these pixels
    # (a quarter of float32's bytes), evaluation reads their standardised floats
    shard = RawIdx(train_raw.images[rows], train_raw.labels[rows], train_raw.num_classes)
    train = shard.to_dataset(stats)
    sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    data = PeerData(train.x, train.y, offsets, train.num_classes, pixels=(shard.images, stats))
    model = build_model(spec, data.dim, data.num_classes)
    return Task(
        name=spec.task,
        peers=spec.peers,
        model=model,
        train=data,
        test=test_raw.to_dataset(stats),
        recipe=recipe_of(spec),
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


def recipe_of(spec: TaskSpec) -> Recipe:
    return Recipe.from_specs(
        loss=spec.loss, metric=spec.metric, optimizer=spec.optimizer, lr=spec.lr
    )


def build_model(spec: TaskSpec, input_dim: int, num_classes: int) -> Model:
    """A plug-in module (built under ``spec.seed``) or a built-in model for these data."""
    if is_plugin(spec.model):
        return ModuleModel(spec.model, seed=spec.seed)
    return model_from_spec(spec.model, input_dim, num_classes)


def _data_task(spec: TaskSpec) -> Task:
    """One data plug-in call per peer; see :mod:`peer.tasks.userdata`."""
    assert spec.data is not None
    ref = data_ref(spec.data)
    pairs = [
        load_peer_data(ref, peer=i, peers=spec.peers, seed=spec.seed) for i in range(spec.peers)
    ]
    classes = max(train.num_classes for train, _ in pairs)
    shapes = {(tuple(t.x.shape[1:]), t.regression) for pair in pairs for t in pair}
    if len(shapes) != 1:
        raise ConfigError(f"data {str(ref)!r}: peers differ in sample shape or label kind")
    trains = [with_classes(train, classes) for train, _ in pairs]
    tests = tuple(with_classes(test, classes) for _, test in pairs)
    model = build_model(spec, trains[0].sample_numel, classes)
    if not isinstance(model, ModuleModel):  # built-in models take flat samples
        trains = [Dataset(t.x.flatten(1), t.y, t.num_classes) for t in trains]
        tests = tuple(Dataset(t.x.flatten(1), t.y, t.num_classes) for t in tests)
    test = Dataset(torch.cat([t.x for t in tests]), torch.cat([t.y for t in tests]), classes)
    return Task(
        name=str(ref),
        peers=spec.peers,
        model=model,
        train=PeerData.from_shards(trains),
        test=test,
        tests=tests,
        recipe=recipe_of(spec),
    )


def build_task(spec: TaskSpec) -> Task:
    """Load or generate the task's data and model (see the module docstring)."""
    task = _build(spec)
    if task.model is not None and task.train is not None:
        check_model(task.model, task.train.shard(0), task.recipe)
    return task


def _build(spec: TaskSpec) -> Task:
    if spec.data is not None:
        return _data_task(spec)
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
        model = build_model(spec, data.dim, data.num_classes)
        return Task(
            name="synthetic",
            peers=spec.peers,
            model=model,
            train=data,
            test=test,
            recipe=recipe_of(spec),
        )
    if spec.task in ("fmnist", "mnist"):
        return _idx_task(spec)
    return _plugin_task(spec)
