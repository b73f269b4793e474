"""The seam between the runner and the engines, and the pieces both engines share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from protocol.aggregation import MEAN
from protocol.codecs.base import Codec
from protocol.spec import Spec
from sim.failure_masks import noise_seed
from sim.failures import Byzantine
from sim.plan import RoundPlan
from sim.profile import PhaseTimer
from sim.training import Trainer

__all__ = ["Engine", "EngineContext", "attacked"]


@dataclass(frozen=True, kw_only=True)
class EngineContext:
    """Everything an engine needs besides its state: the same for both engines."""

    trainer: Trainer | None
    """None for the consensus task (no training)."""
    codec: Codec
    gamma: float
    seed: int
    byzantine: Byzantine | None = None
    aggregator: Spec = MEAN
    """The aggregation rule (:func:`protocol.aggregation.aggregate`)."""
    timer: PhaseTimer = field(default_factory=PhaseTimer)
    """Wall time per phase of a round (off unless profiling)."""


class Engine(Protocol):
    """Executes round plans on the parameters of all peers."""

    name: str

    def step(self, plan: RoundPlan) -> torch.Tensor:
        """Run one round; return the training loss per peer [N] (NaN where none trained)."""
        ...

    def params(self) -> torch.Tensor:
        """Current models [N, P] (a view or copy; callers must not modify it)."""
        ...


def attacked(
    x: torch.Tensor, attack: Byzantine, *, seed: int, round: int, peer: int
) -> torch.Tensor:
    """What a Byzantine peer publishes instead of its model ``x`` [P].

    >>> flip = Byzantine(fraction=0.1, scale=2.0)
    >>> attacked(torch.tensor([1.0, -2.0]), flip, seed=0, round=0, peer=0)
    tensor([-2.,  4.])
    """
    if attack.attack == "signflip":
        return -attack.scale * x
    gen = torch.Generator().manual_seed(noise_seed(seed, round=round, peer=peer))
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.device, x.dtype)
    return x + attack.scale * noise
