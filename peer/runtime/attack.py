"""A compromised peer (``rumor peer --attack SPEC``): the same attacks as the simulator's.

A fault-injection tool for robustness tests, enabled only by the command-line flag, never by a
config key. The peer keeps its identity and its key: its frames are valid, signed frames, so
signatures do not stop it (they stop impostors, not a compromised peer).

- Model attacks (every attack but ``labelflip``): :class:`Attacker` publishes
  :func:`protocol.attacks.published` of its trained model and of the copies it received in the
  previous round (in node order), and never mixes: its own model only trains. It still waits for
  its neighbours' frames each round, so it keeps the swarm's pace and has copies to attack with.
- ``labelflip``: the peer follows the protocol, but :func:`poison_labels` makes it train on
  flipped labels (``y -> C - 1 - y``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import torch

from peer.runtime.inbound import Inbound
from peer.runtime.learning import LocalLearner, Samples
from peer.tasks import Dataset
from protocol.attacks import flip_labels, published
from protocol.errors import ConfigError
from protocol.spec import Spec
from protocol.types import PeerId

__all__ = ["Attacker", "FlippedLabels", "poison_labels"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(kw_only=True, eq=False)
class Attacker:
    """What a forging peer publishes each round, and the copies it keeps to forge with."""

    attack: Spec
    """The attack, its defaults explicit (:func:`protocol.attack_names.resolve_attack`)."""
    seed: int
    """The run seed (``learning.seed``): noise is drawn as in the simulator."""
    index: int
    """The peer's index in the swarm (its data share)."""
    received: torch.Tensor | None = None
    """[K, P] the copies received in the last round, in node order; None before any."""

    def forge(self, x: torch.Tensor, round: int) -> torch.Tensor:
        """What to publish in ``round`` instead of the trained model ``x``."""
        copies = self.received if self.received is not None else x.new_zeros((0, len(x)))
        return published(self.attack, x, copies, seed=self.seed, round=round, peer=self.index)

    def receive(
        self,
        inbound: Inbound,
        round: int,
        *,
        weights: Mapping[PeerId, float],
        alive: frozenset[PeerId],
        staleness: int | None,
    ) -> int:
        """Keep the neighbours' copies of ``round`` (chosen as :func:`peer.runtime.gossip.
        mix_received` chooses them, in node order) for the next frame; return how many."""
        copies = []
        for peer in weights:
            if staleness is not None and peer not in alive:
                continue
            copy = inbound.copy_for(peer, round, staleness=staleness)
            if copy is not None:
                copies.append(copy)
        inbound.prune(round + 1)
        self.received = torch.stack(copies) if copies else None
        return len(copies)


@dataclasses.dataclass(frozen=True)
class FlippedLabels:
    """The samples of ``inner`` with every label ``c`` replaced by ``C - 1 - c``."""

    inner: Samples

    def __len__(self) -> int:
        return len(self.inner)

    def subset(self, indices: torch.Tensor) -> Dataset:
        rows = self.inner.subset(indices)
        return Dataset(rows.x, flip_labels(rows.y, rows.num_classes), rows.num_classes)


def poison_labels(learner: LocalLearner) -> LocalLearner:
    """``learner`` training on flipped labels; ConfigError if its task has no class labels."""
    shard = learner.shard
    if learner.model is None or shard is None:
        raise ConfigError("--attack labelflip needs a task with training data (not consensus)")
    probe = shard.subset(torch.arange(min(1, len(shard))))
    if probe.regression or probe.num_classes < 2:
        raise ConfigError("--attack labelflip needs class labels (a classification task)")
    return dataclasses.replace(learner, shard=FlippedLabels(shard))
