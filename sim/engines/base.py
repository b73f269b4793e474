"""The seam between the runner and the engines, and the pieces both engines share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from protocol.aggregation import MEAN
from protocol.attack_names import NEIGHBOUR_ATTACKS
from protocol.attacks import published
from protocol.codecs.base import Codec
from protocol.privacy_params import DpParams
from protocol.spec import Spec
from sim.failures import Byzantine
from sim.plan import RoundPlan
from sim.profile import PhaseTimer
from sim.training import Trainer

__all__ = ["Engine", "EngineContext", "forged_frames", "received_from"]


@dataclass(frozen=True, kw_only=True)
class EngineContext:
    """Everything an engine needs besides its state: the same for both engines."""

    trainer: Trainer | None
    """None for the consensus task (no training)."""
    codec: Codec
    gamma: float
    seed: int
    byzantine: Byzantine | None = None
    """The attack, its defaults made explicit (:func:`protocol.attack_names.resolve_attack`)."""
    aggregator: Spec = MEAN
    """The aggregation rule (:func:`protocol.aggregation.aggregate`)."""
    privacy: DpParams | None = None
    """Clip and noise each trained update (:mod:`sim.engines.privacy`); None: no DP."""
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


def forged_frames(
    plan: RoundPlan,
    attack: Spec,
    *,
    seed: int,
    own: Callable[[int], torch.Tensor],
    copy: Callable[[int], torch.Tensor],
) -> dict[int, torch.Tensor]:
    """What each forging peer of ``plan`` publishes this round (:func:`protocol.attacks.published`),
    from its own model ``own(peer)`` and the public copies ``copy(sender)`` it holds before this
    round's frames: those of its in-neighbours whose frames reach it in sync this round and that
    have published before (it has received nothing in round 0), in the plan's edge order."""
    frames = {}
    needs_copies = attack.name in NEIGHBOUR_ATTACKS
    for peer in np.flatnonzero(plan.byzantine).tolist():
        x = own(peer)
        senders = received_from(plan, peer) if needs_copies else []
        copies = torch.stack([copy(j) for j in senders]) if senders else x.new_zeros((0, len(x)))
        frames[peer] = published(attack, x, copies, seed=seed, round=plan.round, peer=peer)
    return frames


def received_from(plan: RoundPlan, peer: int) -> list[int]:
    """The senders whose copies ``peer`` holds in sync this round, having had a frame before.

    >>> import numpy as np
    >>> one = np.ones(3, dtype=bool)
    >>> plan = RoundPlan(round=1, src=np.array([1, 2, 0]), dst=np.array([0, 0, 1]),
    ...     weight=np.ones(3), alive=one, steps=np.ones(3, dtype=np.int64), keyframe=~one,
    ...     seqs=np.array([0, 1, 1]), seeds=[0, 0, 0], delivered=one,
    ...     mix=np.array([True, True, True]), byzantine=~one)
    >>> received_from(plan, 0), received_from(plan, 1)
    ([1, 2], [])
    """
    edges = (plan.dst == peer) & plan.mix & (plan.seqs[plan.src] > 0)
    return [int(j) for j in plan.src[edges]]
