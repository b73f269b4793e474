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
rows at a time.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Protocol

import torch

from peer.config import PeerConfig
from peer.tasks import (
    Dataset,
    FlatModel,
    PeerData,
    TaskSpec,
    build_task,
    model_from_spec,
    partition,
)
from peer.tasks.idx import FASHION_MNIST_ROOT, IdxSplit, clear_cache
from peer.tasks.learner import batch_indices, evaluate, local_sgd
from protocol.errors import ConfigError
from protocol.fingerprint import fingerprint

__all__ = ["LocalLearner", "Samples", "load_learner"]

_EVAL_ROWS = 512
"""Held-out rows converted to float and evaluated at a time (1.6 MB for 784 pixels)."""


class Samples(Protocol):
    """Labelled samples that hand out float32 copies of some rows: a Dataset, or PixelRows."""

    def __len__(self) -> int: ...

    def subset(self, indices: torch.Tensor) -> Dataset: ...


@dataclass(kw_only=True, eq=False)
class LocalLearner:
    """Peer ``index`` of ``sizes.numel()``: model, own shard, held-out share, hyperparameters."""

    index: int
    model: FlatModel | None
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
        """``local_steps`` SGD steps on the own shard; returns (new x, mean loss; NaN if none)."""
        if self.model is None or self.shard is None:
            return x, float("nan")
        block = batch_indices(
            self.sizes, self.local_steps, self.batch_size, seed=self.seed, round=round
        )
        rows, local = torch.unique(block[self.index], return_inverse=True)
        used = self.shard.subset(rows)  # this round's samples only, row k = shard row rows[k]
        data = PeerData(used.x, used.y, torch.tensor([0, len(used)]), used.num_classes)
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
        )
        return new, float(loss)

    def accuracy(self, x: torch.Tensor) -> float | None:
        """Accuracy on the held-out share, or None without a model."""
        if self.model is None or self.held_out is None:
            return None
        total = len(self.held_out)
        correct = 0
        for lo in range(0, total, _EVAL_ROWS):
            part = self.held_out.subset(torch.arange(lo, min(total, lo + _EVAL_ROWS)))
            acc, _ = evaluate(self.model, x, part)
            correct += round(float(acc) * len(part))
        return correct / total


def _idx_learner(config: PeerConfig, *, index: int, peers: int) -> LocalLearner:
    """Fashion-MNIST/MNIST, holding only this peer's rows (the rows ``build_task`` gives it).

    The labels alone decide the partition; the image files are then streamed once, keeping this
    peer's rows and held-out share in uint8. The whole training set would be 188 MB in float32
    (47 MB in uint8), most of a small device's budget.
    """
    learning = config.learning
    root = learning.data if learning.data is not None else FASHION_MNIST_ROOT
    split = IdxSplit.locate(root, dataset=learning.task)
    parts = partition(split.train_labels, peers, learning.partition, seed=learning.seed)
    sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
    own, held_out = split.rows(parts[index], torch.arange(index, len(split.test_labels), peers))
    model = model_from_spec(learning.model, own.raw.images.shape[1], own.raw.num_classes)
    return LocalLearner(
        index=index,
        model=model,
        shard=own,
        sizes=sizes,
        held_out=held_out,
        start=model.init(seed=learning.seed),
        local_steps=learning.local_steps,
        batch_size=learning.batch_size,
        lr=learning.lr,
        seed=learning.seed,
    )


def load_learner(config: PeerConfig, *, index: int, peers: int) -> LocalLearner:
    """Build the task of ``config`` and keep what peer ``index`` of ``peers`` needs."""
    if not 0 <= index < peers:
        raise ConfigError(f"learning.partition_index = {index}: expected 0 to {peers - 1}")
    learning = config.learning
    if learning.task in ("fmnist", "mnist"):
        return _idx_learner(config, index=index, peers=peers)
    spec = TaskSpec(
        task=learning.task,
        model=learning.model,
        partition=learning.partition,
        peers=peers,
        seed=learning.seed,
        data_path=learning.data,
    )
    task = build_task(spec)
    start = task.init_params(seed=learning.seed)[index].clone()
    shard = held_out = None
    sizes = torch.ones(peers, dtype=torch.int64)
    if task.train is not None and task.test is not None:
        sizes = task.train.sizes.clone()
        own = task.train.shard(index)  # views into every peer's data: copy ours out
        shard = Dataset(own.x.clone(), own.y.clone(), own.num_classes)
        rows = torch.arange(index, len(task.test), peers)
        held_out = task.test.subset(rows)
    model = task.model
    del task  # the other peers' shards and the full test set are not ours to keep
    clear_cache()  # IDX files a plug-in task may have decoded
    gc.collect()
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
    )
