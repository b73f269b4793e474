"""One peer's learning state: its own data shard, its model, and the round's training step.

The daemon keeps only its own shard (and a share of the test set) in memory. It still trains on
exactly the samples the simulator gives peer ``i``: :func:`peer.learner.batch_indices` draws the
round's block for all N shard sizes and the peer takes row ``i``, then runs
:func:`peer.learner.local_sgd` on a one-peer :class:`~peer.tasks.PeerData`.

The held-out set is every N-th test sample starting at ``i`` (the peer's share of the task's
test split), so that N peers together evaluate on the whole test set.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch

from peer.config import PeerConfig
from peer.learner import batch_indices, evaluate, local_sgd
from peer.tasks import (
    Dataset,
    FlatModel,
    PeerData,
    TaskSpec,
    build_task,
    model_from_spec,
    partition,
)
from peer.tasks.idx import FASHION_MNIST_ROOT, _read_cached, load_raw_split
from protocol.errors import ConfigError
from protocol.fingerprint import fingerprint

__all__ = ["LocalLearner", "load_learner"]


@dataclass(kw_only=True, eq=False)
class LocalLearner:
    """Peer ``index`` of ``sizes.numel()``: model, own shard, held-out share, hyperparameters."""

    index: int
    model: FlatModel | None
    """None for the consensus task (no training: pure averaging)."""
    shard: PeerData | None
    sizes: torch.Tensor
    """Shard sizes of every peer [N]: row ``index`` of the batch block depends on all of them."""
    held_out: Dataset | None
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
        new, loss = local_sgd(
            self.model,
            x,
            self.shard,
            0,
            steps=self.local_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            round=round,
            indices=block[self.index : self.index + 1],
        )
        return new, float(loss)

    def accuracy(self, x: torch.Tensor) -> float | None:
        """Accuracy on the held-out share, or None without a model."""
        if self.model is None or self.held_out is None:
            return None
        acc, _ = evaluate(self.model, x, self.held_out)
        return float(acc)


def _idx_learner(config: PeerConfig, *, index: int, peers: int) -> LocalLearner:
    """Fashion-MNIST/MNIST, converting to float only this peer's rows (as ``build_task`` would).

    The whole training set in float32 is 188 MB, most of a device's budget; the uint8 images
    (47 MB) are all a peer needs to hold while partitioning.
    """
    learning = config.learning
    root = learning.data if learning.data is not None else FASHION_MNIST_ROOT
    train_raw, test_raw = load_raw_split(root, dataset=learning.task)
    stats = train_raw.pixel_stats()
    parts = partition(train_raw.labels, peers, learning.partition, seed=learning.seed)
    sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
    own = train_raw.to_dataset(stats, rows=parts[index])
    held_out = test_raw.to_dataset(stats, rows=torch.arange(index, len(test_raw.labels), peers))
    model = model_from_spec(learning.model, own.dim, own.num_classes)
    del train_raw, test_raw, parts
    _read_cached.cache_clear()  # the decoded files: other processes may need them, not this one
    gc.collect()
    shard = PeerData(own.x, own.y, torch.tensor([0, len(own)], dtype=torch.int64), own.num_classes)
    return LocalLearner(
        index=index,
        model=model,
        shard=shard,
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
        own = task.train.shard(index)
        shard = PeerData(
            own.x.clone(),
            own.y.clone(),
            torch.tensor([0, len(own)], dtype=torch.int64),
            own.num_classes,
        )
        rows = torch.arange(index, len(task.test), peers)
        held_out = task.test.subset(rows)
    model = task.model
    del task  # the other peers' shards and the full test set are not ours to keep
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
