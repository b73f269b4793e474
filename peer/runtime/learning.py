"""One peer's learning state: its own data shard, its model, and the round's training step.

The daemon keeps only its own shard (and a share of the test set) in memory. It still trains on
exactly the samples the simulator gives peer ``i``: :func:`peer.tasks.learner.batch_indices`
draws the round's block for all N shard sizes and the peer takes row ``i``, then runs
:func:`peer.tasks.learner.local_sgd` on a one-peer :class:`~peer.tasks.PeerData` holding just the
rows that block uses, so the batches, and therefore the SGD steps, are the simulator's.

Image shards stay in uint8 (:class:`~peer.tasks.data.PixelRows`) and only a round's rows become
float32, converted by the same code as the simulator's full set, so the inputs are bitwise equal:
for Fashion-MNIST and 4 peers that is 12 MB held instead of 47 MB.

The held-out set is every N-th test sample starting at ``i`` (the peer's share of the task's
test split), so that N peers together evaluate on the whole test set; it is evaluated a block of
rows at a time. With a data plug-in (``learning.data``) the daemon calls it once, with its own
partition index, trains on the train set it returns and evaluates on the test set it returns,
as the simulator does for that peer.

A plug-in model trains as the loop engine trains it: the module itself, with autograd, through
:func:`peer.tasks.learner.local_sgd` on one row, with the configured loss and optimizer. The
optimizer state and the module's integer buffers are part of the peer's checkpoint
(:meth:`LocalLearner.state_tensors`).
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch

from peer.config import PeerConfig
from peer.runtime.finite import all_finite
from peer.tasks import (
    Dataset,
    PeerData,
    TaskSpec,
    build_task,
)
from peer.tasks.idx import FASHION_MNIST_ROOT, IdxSplit, clear_cache
from peer.tasks.learner import batch_indices, evaluate, local_sgd
from peer.tasks.module import ModuleModel
from peer.tasks.optim import OptState
from peer.tasks.partition import partition
from peer.tasks.plugin import data_ref
from peer.tasks.recipe import Recipe, check_model
from peer.tasks.task import Model, build_model, recipe_of
from peer.tasks.userdata import load_peer_data
from protocol.errors import ConfigError
from protocol.fingerprint import fingerprint

__all__ = ["LocalLearner", "Samples", "load_learner", "task_spec"]

_EVAL_ROWS = 512
"""Held-out rows converted to float and evaluated at a time (1.6 MB for 784 pixels) at most."""
_EVAL_FLOATS = 1 << 20
"""Activation floats per evaluated chunk (4 MiB): fewer rows for a model with larger activations
(a conv net's 512 rows would hold tens of MB at once, on a device's budget of a few hundred)."""


class Samples(Protocol):
    """Labelled samples that hand out float32 copies of some rows: a Dataset, or PixelRows."""

    def __len__(self) -> int: ...

    def subset(self, indices: torch.Tensor) -> Dataset: ...


@dataclass(kw_only=True, eq=False)
class LocalLearner:
    """Peer ``index`` of ``sizes.numel()``: model, own shard, held-out share, hyperparameters."""

    index: int
    model: Model | None
    """None for the consensus task (no training: pure averaging)."""
    shard: Samples | None
    sizes: torch.Tensor
    """Shard sizes of every peer [N]: row ``index`` of the batch block depends on all of them."""
    held_out: Samples | None
    start: torch.Tensor
    """Initial parameters [P] (float32, or float64 for consensus)."""
    local_steps: int
    batch_size: int
    lr: float
    seed: int
    recipe: Recipe = field(default_factory=Recipe)
    opt_state: OptState = field(default_factory=dict)
    """The optimizer's state for this peer's [P] parameters (made at construction)."""

    def __post_init__(self) -> None:
        if not self.opt_state:
            self.opt_state = self.recipe.optimizer.init_state(self.start)

    @property
    def metric_name(self) -> str:
        return self.recipe.metric.name

    @property
    def higher_is_better(self) -> bool:
        return self.recipe.metric.higher_is_better

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps besides the parameters: the optimizer's state
        (``opt.<name>``) and a plug-in module's integer buffers (``local.<name>``)."""
        tensors = {f"opt.{k}": v.clone() for k, v in self.opt_state.items()}
        if isinstance(self.model, ModuleModel):
            tensors |= {f"local.{k}": v.clone() for k, v in self.model.local.items()}
        return tensors

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` gave; ConfigError if it does not fit."""
        for k, v in self.opt_state.items():
            saved = tensors.get(f"opt.{k}")
            if saved is None or saved.shape != v.shape or saved.dtype != v.dtype:
                raise ConfigError(
                    f"checkpoint lacks optimizer state opt.{k} of shape {tuple(v.shape)} "
                    f"(optimizer {self.recipe.optimizer.spec!r})"
                )
            v.copy_(saved)
        if isinstance(self.model, ModuleModel):
            for k, v in self.model.local.items():
                saved = tensors.get(f"local.{k}")
                if saved is not None and saved.shape == v.shape:
                    v.copy_(saved.to(v.dtype))

    @property
    def num_params(self) -> int:
        return int(self.start.numel())

    @property
    def fingerprint(self) -> str:
        if self.model is None:
            dtype = str(self.start.dtype).removeprefix("torch.")
            return fingerprint([("params", (self.num_params,), dtype)])
        return fingerprint(self.model.layout)

    def train(self, x: torch.Tensor, round: int) -> tuple[torch.Tensor, float]:
        """``local_steps`` optimizer steps on the own shard; returns (new x, mean loss; NaN if
        none). The optimizer's state advances only when the new parameters are finite (the
        runtime then keeps its last model)."""
        if self.model is None or self.shard is None:
            return x, float("nan")
        block = batch_indices(
            self.sizes, self.local_steps, self.batch_size, seed=self.seed, round=round
        )
        rows, local = torch.unique(block[self.index], return_inverse=True)
        used = self.shard.subset(rows)  # this round's samples only, row k = shard row rows[k]
        data = PeerData(used.x, used.y, torch.tensor([0, len(used)]), used.num_classes)
        state = {k: v.clone() for k, v in self.opt_state.items()}
        new, loss = local_sgd(
            self.model,
            x,
            data,
            0,
            steps=self.local_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            round=round,
            indices=local.unsqueeze(0),
            recipe=self.recipe,
            opt_state=state,
        )
        if all_finite(new):  # a diverged step is dropped, its state with it
            for k, v in state.items():
                self.opt_state[k].copy_(v)
        return new, float(loss)

    def accuracy(self, x: torch.Tensor) -> float | None:
        """The metric (accuracy unless configured otherwise) on the held-out set, or None
        without a model."""
        if self.model is None or self.held_out is None:
            return None
        total = len(self.held_out)
        rows = max(1, min(_EVAL_ROWS, _EVAL_FLOATS // self.model.activations_per_sample))
        value = 0.0
        for lo in range(0, total, rows):
            part = self.held_out.subset(torch.arange(lo, min(total, lo + rows)))
            metric, _ = evaluate(self.model, x, part, recipe=self.recipe)
            value += float(metric) * len(part)
        if self.recipe.metric.name == "accuracy":
            return round(value) / total  # a count of correct samples, exactly
        return value / total


def _idx_learner(config: PeerConfig, *, index: int, peers: int) -> LocalLearner:
    """Fashion-MNIST/MNIST, holding only this peer's rows (the rows ``build_task`` gives it).

    The labels alone decide the partition; the image files are then streamed once, keeping this
    peer's rows and held-out share in uint8. The whole training set would be 188 MB in float32
    (47 MB in uint8), most of a small device's budget.
    """
    learning = config.learning
    root = learning.data_path if learning.data_path is not None else FASHION_MNIST_ROOT
    split = IdxSplit.locate(root, dataset=learning.task)
    parts = partition(split.train_labels, peers, learning.partition, seed=learning.seed)
    sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
    own, held_out = split.rows(parts[index], torch.arange(index, len(split.test_labels), peers))
    spec = task_spec(config, peers)
    model = build_model(spec, own.raw.images.shape[1], own.raw.num_classes)
    if isinstance(model, ModuleModel):
        check_model(model, held_out.subset(torch.arange(min(8, len(held_out)))), recipe_of(spec))
    return _learner(
        config,
        index=index,
        model=model,
        shard=own,
        sizes=sizes,
        held_out=held_out,
        recipe=recipe_of(spec),
    )


def _learner(
    config: PeerConfig,
    *,
    index: int,
    model: Model | None,
    shard: Samples | None,
    sizes: torch.Tensor,
    held_out: Samples | None,
    recipe: Recipe,
    start: torch.Tensor | None = None,
) -> LocalLearner:
    """The learner with ``config``'s hyperparameters; ``start`` defaults to the model's init."""
    learning = config.learning
    if start is None:
        assert model is not None
        start = model.init(seed=learning.seed)
    return LocalLearner(
        index=index,
        model=model,
        shard=shard,
        sizes=sizes,
        held_out=held_out,
        start=start,
        local_steps=learning.local_steps,
        batch_size=learning.batch_size,
        lr=learning.lr,
        seed=learning.seed,
        recipe=recipe,
    )


def task_spec(config: PeerConfig, peers: int) -> TaskSpec:
    """The task a peer's config describes, for a swarm of ``peers``."""
    learning = config.learning
    return TaskSpec(
        task=learning.task,
        model=learning.model,
        partition=learning.partition,
        peers=peers,
        seed=learning.seed,
        data_path=learning.data_path,
        data=learning.data,
        loss=learning.loss,
        metric=learning.metric,
        optimizer=learning.optimizer,
        lr=learning.lr,
    )


def _data_learner(config: PeerConfig, *, index: int, peers: int) -> LocalLearner:
    """One call of the data plug-in, for this peer only (see the module docstring).

    The batch block's row ``index`` depends only on this peer's shard size (and N), so the
    other peers' sizes, unknown here, are set to 1.
    """
    learning, spec = config.learning, task_spec(config, peers)
    assert learning.data is not None
    train, test = load_peer_data(data_ref(learning.data), peer=index, peers=peers, seed=spec.seed)
    model = build_model(spec, train.sample_numel, train.num_classes)
    if not isinstance(model, ModuleModel):  # built-in models take flat samples
        train = Dataset(train.x.flatten(1), train.y, train.num_classes)
        test = Dataset(test.x.flatten(1), test.y, test.num_classes)
    recipe = recipe_of(spec)
    check_model(model, train, recipe)
    sizes = torch.ones(peers, dtype=torch.int64)
    sizes[index] = len(train)
    return _learner(
        config, index=index, model=model, shard=train, sizes=sizes, held_out=test, recipe=recipe
    )


def load_learner(config: PeerConfig, *, index: int, peers: int) -> LocalLearner:
    """Build the task of ``config`` and keep what peer ``index`` of ``peers`` needs."""
    if not 0 <= index < peers:
        raise ConfigError(f"learning.partition_index = {index}: expected 0 to {peers - 1}")
    learning = config.learning
    if learning.data is not None:
        return _data_learner(config, index=index, peers=peers)
    if learning.task in ("fmnist", "mnist"):
        return _idx_learner(config, index=index, peers=peers)
    task = build_task(task_spec(config, peers))
    start = task.init_params(seed=learning.seed)[index].clone()
    shard = held_out = None
    sizes = torch.ones(peers, dtype=torch.int64)
    if task.train is not None and task.test is not None:
        sizes = task.train.sizes.clone()
        own = task.train.shard(index)  # views into every peer's data: copy ours out
        shard = Dataset(own.x.clone(), own.y.clone(), own.num_classes)
        rows = torch.arange(index, len(task.test), peers)
        held_out = task.test.subset(rows)
    model, recipe = task.model, task.recipe
    del task  # the other peers' shards and the full test set are not ours to keep
    clear_cache()  # IDX files a plug-in task may have decoded
    gc.collect()
    return _learner(
        config,
        index=index,
        model=model,
        shard=shard,
        sizes=sizes,
        held_out=held_out,
        recipe=recipe,
        start=start,
    )
