"""The attackers of a run, set up before the first round: explicit defaults and poisoned data.

:func:`resolve` makes the attack's defaults explicit for this swarm (ALIE's z from the number of
peers and attackers), so both engines publish the same frames; :func:`poison_labels` flips the
labels of the labelflip peers' training data once, which both engines then train on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from protocol.attack_names import resolve_attack
from protocol.attacks import flip_labels
from protocol.errors import ConfigError
from sim.failures import Byzantine
from sim.training import Trainer

__all__ = ["poison_labels", "resolve"]


def resolve(byzantine: Byzantine | None, attackers: npt.NDArray[np.bool_]) -> Byzantine | None:
    """``byzantine`` with its attack's defaults filled in for ``attackers`` [N] (who attacks).

    >>> resolve(Byzantine(fraction=0.5), np.array([True, False])).attack
    Spec(name='signflip', params={'scale': 1.0})
    """
    if byzantine is None:
        return None
    attack = resolve_attack(byzantine.attack, peers=len(attackers), attackers=int(attackers.sum()))
    return dataclasses.replace(byzantine, attack=attack)


def poison_labels(trainer: Trainer | None, attackers: npt.NDArray[np.bool_], *, task: str) -> None:
    """Flip the training labels (``y -> C - 1 - y``) of the ``attackers`` in ``trainer``'s data;
    ConfigError when the task has no labels to flip (consensus, regression)."""
    if trainer is None:
        raise ConfigError(f"byzantine: labelflip needs a task with training data; {task} has none")
    data = trainer.data
    try:
        flipped = flip_labels(data.y, data.num_classes)
    except ConfigError as exc:
        raise ConfigError(f"byzantine: task {task}: {exc}") from exc
    y = data.y.clone()
    offsets = data.offsets.tolist()
    for peer in np.flatnonzero(attackers).tolist():
        lo, hi = offsets[peer], offsets[peer + 1]
        y[lo:hi] = flipped[lo:hi]
    trainer.data = dataclasses.replace(data, y=y)
