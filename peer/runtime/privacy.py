"""A daemon's differential privacy: noise its trained model once, and count what it spent.

The daemon calls :func:`protocol.privacy.privatize`, the function both simulator engines call,
on the model it trained this round, before encoding: every frame it publishes afterwards is a
function of noised models. The noise seed is :func:`protocol.privacy.dp_seed` of
``privacy.seed`` (or of a fresh random seed when unset), the round and the peer's index, so a
daemon given the simulator's run seed releases what the simulator's peer releases.

Rounds counted: every round that trained. After a restart from a checkpoint the count resumes at
the checkpoint's round plus ``storage.checkpoint_every``: the rounds run since that checkpoint
were published before the crash and run again with new noise, so each may have been released
twice (an upper bound, as an accountant must give).
"""

from __future__ import annotations

import logging
import secrets

import torch

from protocol.privacy import dp_seed, privatize
from protocol.privacy_accounting import epsilon
from protocol.privacy_params import DpParams

__all__ = ["PeerPrivacy"]

log = logging.getLogger(__name__)


class PeerPrivacy:
    """The mechanism of one peer (``index``) and its privacy spent so far."""

    def __init__(self, params: DpParams, *, index: int, seed: int | None) -> None:
        self.params, self.index = params, index
        self._seed = secrets.randbits(64) if seed is None else seed
        log.info(
            "privacy: local DP on: clip %g, sigma %g, epsilon reported at delta %g%s",
            params.clip,
            params.sigma,
            params.delta,
            "" if seed is None else " (privacy.seed is set: whoever knows it can remove the noise)",
        )
        self.rounds = 0
        """Rounds in which this peer released a noised update (an upper bound after resume)."""

    def release(self, before: torch.Tensor, after: torch.Tensor, *, round: int) -> torch.Tensor:
        """The model to publish instead of ``after``, trained from ``before`` in ``round``."""
        self.rounds += 1
        seed = dp_seed(self._seed, round=round, peer=self.index)
        return privatize(before, after, self.params, seed=seed)

    def resumed(self, round: int, *, checkpoint_every: int) -> None:
        """Account for a restart at a checkpoint of ``round`` (see the module docstring)."""
        self.rounds = round + checkpoint_every
        log.info(
            "privacy: resumed at round %d; counting %d rounds spent (epsilon %.4g)",
            round,
            self.rounds,
            self.epsilon,
        )

    @property
    def epsilon(self) -> float:
        """The epsilon spent so far at ``params.delta``."""
        p = self.params
        return epsilon(self.rounds, sigma=p.sigma, delta=p.delta)
