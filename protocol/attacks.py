"""What a Byzantine peer publishes: pure functions of what a real attacker has.

An attacker holds its own model ``x`` [P] and the public copies it has received from its
in-neighbours, ``copies`` [K, P] (in node order, as the daemon and the simulator keep them).
It knows nothing else: not its neighbours' neighbours, not who else attacks. The daemon
(``rumor peer --attack``) and both simulator engines call :func:`published` with the copies the
attacker holds when it publishes a round (those of the previous round), so that the one
definition runs everywhere. docs/robustness.md ("Attacks") defines each attack with its source.

- ``signflip[:scale=S]``: ``-S * x``.
- ``noise[:scale=S]``: ``x + S * N(0, I)``, seeded by (run seed, round, peer).
- ``alie[:z=Z]`` (Baruch et al. 2019): ``mean(copies) - Z * std(copies)`` per coordinate.
- ``ipm[:eps=E]`` (Xie et al. 2020): ``-E * mean(copies)``.
- ``dissensus[:eps=E]`` (He, Karimireddy and Jaggi 2022), broadcast form: with ``t`` the first
  copy, ``t - E * sum_{k > 0} (copies_k - t)``.
- ``labelflip``: the model itself (the peer trains on flipped labels, :func:`flip_labels`).

The attacks that need copies publish the attacker's own model while it has received none.
Every result has ``x``'s dtype; means and sums are taken in float64 in node order.
"""

from __future__ import annotations

import numpy as np
import torch

from protocol.attack_names import (
    ALIE_FALLBACK_Z,
    DEFAULT_DISSENSUS_EPS,
    DEFAULT_IPM_EPS,
    NEIGHBOUR_ATTACKS,
    check_attack_spec,
)
from protocol.errors import ConfigError
from protocol.mixing import WIDE
from protocol.spec import Spec
from protocol.types import Vector

__all__ = [
    "alie",
    "attack_seed",
    "dissensus",
    "flip_labels",
    "ipm",
    "noise",
    "published",
    "signflip",
]

_NOISE_STREAM = 5
"""The noise stream of the simulator's seeded failure streams (sim.failure_masks)."""


def attack_seed(seed: int, *, round: int, peer: int) -> int:
    """A 64-bit seed for the noise ``peer`` publishes in ``round`` of a run seeded ``seed``:
    distinct streams for every (seed, round, peer), however many peers and rounds.

    >>> attack_seed(0, round=1, peer=0) != attack_seed(0, round=0, peer=65_537)
    True
    """
    sequence = np.random.SeedSequence([seed, _NOISE_STREAM, round, peer])
    return int(sequence.generate_state(1, np.uint64)[0])


def published(
    attack: Spec, x: Vector, copies: torch.Tensor, *, seed: int, round: int, peer: int
) -> Vector:
    """What a peer running ``attack`` publishes in ``round`` instead of its model ``x`` [P],
    given the ``copies`` [K, P] it has received (K may be 0).

    >>> x, copies = torch.tensor([1.0, -2.0]), torch.tensor([[0.0, 2.0], [2.0, 4.0]])
    >>> published(Spec("signflip", {"scale": 2.0}), x, copies, seed=0, round=0, peer=0)
    tensor([-2.,  4.])
    >>> published(Spec("ipm"), x, copies, seed=0, round=0, peer=0)
    tensor([-0.1000, -0.3000])
    >>> published(Spec("ipm"), x, copies[:0], seed=0, round=0, peer=0)
    tensor([ 1., -2.])
    """
    params = attack.params
    if attack.name == "signflip":
        return signflip(x, scale=float(params.get("scale", 1.0)))
    if attack.name == "noise":
        scale = float(params.get("scale", 1.0))
        return noise(x, scale=scale, seed=attack_seed(seed, round=round, peer=peer))
    if attack.name == "labelflip" or (attack.name in NEIGHBOUR_ATTACKS and len(copies) == 0):
        return x
    if copies.dim() != 2 or copies.shape[1] != x.shape[-1]:
        raise ValueError(f"expected copies [K, {x.shape[-1]}], got {tuple(copies.shape)}")
    if attack.name == "alie":
        out = alie(copies, z=float(params.get("z", ALIE_FALLBACK_Z)))
    elif attack.name == "ipm":
        out = ipm(copies, eps=float(params.get("eps", DEFAULT_IPM_EPS)))
    elif attack.name == "dissensus":
        out = dissensus(copies, eps=float(params.get("eps", DEFAULT_DISSENSUS_EPS)))
    else:
        check_attack_spec(attack)  # raises ConfigError naming the attack
        raise AssertionError(f"attack {attack.name!r} is known but not implemented")
    return out.to(x.dtype)


def signflip(x: Vector, *, scale: float) -> Vector:
    """``-scale * x``.

    >>> signflip(torch.tensor([1.0, -2.0]), scale=1.0)
    tensor([-1.,  2.])
    """
    return -scale * x


def noise(x: Vector, *, scale: float, seed: int) -> Vector:
    """``x + scale * N(0, I)``, the normal draw in float64 from a generator seeded ``seed``.

    >>> a = noise(torch.zeros(3), scale=1.0, seed=7)
    >>> torch.equal(a, noise(torch.zeros(3), scale=1.0, seed=7)), bool((a != 0).all())
    (True, True)
    """
    gen = torch.Generator().manual_seed(seed)
    draw = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.device, x.dtype)
    return x + scale * draw


def alie(copies: torch.Tensor, *, z: float) -> torch.Tensor:
    """A Little Is Enough: ``mean - z * std`` per coordinate over the K copies [K, P], in
    float64 (std with Bessel's correction, as the reference code's ``torch.std``; 0 when K = 1).

    >>> alie(torch.tensor([[0.0, 1.0], [2.0, 1.0]]), z=1.0)
    tensor([-0.4142,  1.0000], dtype=torch.float64)
    """
    wide = copies.to(WIDE)
    mean = wide.mean(dim=0)
    if len(wide) < 2:
        return mean
    return mean - z * wide.std(dim=0, correction=1)


def ipm(copies: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Inner product manipulation: ``-eps * mean`` of the K copies [K, P], in float64.

    >>> ipm(torch.tensor([[1.0], [3.0]]), eps=0.5)
    tensor([-1.], dtype=torch.float64)
    """
    return -eps * copies.to(WIDE).mean(dim=0)


def dissensus(copies: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Dissensus, broadcast form: the first copy ``t`` minus ``eps`` times the pull of the other
    copies on it, ``t - eps * sum_{k >= 1} (copies_k - t)``, summed in float64 in order k.

    >>> dissensus(torch.tensor([[1.0], [2.0], [4.0]]), eps=1.5)
    tensor([-5.], dtype=torch.float64)
    """
    wide = copies.to(WIDE)
    target = wide[0]
    pull = torch.zeros_like(target)
    for k in range(1, len(wide)):
        pull.add_(wide[k] - target)
    return target - eps * pull


def flip_labels(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Label flipping: class ``c`` becomes ``num_classes - 1 - c`` (classification only).

    >>> flip_labels(torch.tensor([0, 3, 9]), 10)
    tensor([9, 6, 0])
    >>> flip_labels(torch.tensor([0.5]), 0)
    Traceback (most recent call last):
    ...
    protocol.errors.ConfigError: labelflip needs class labels (classification); got float targets
    """
    if y.is_floating_point() or num_classes < 2:
        kind = "float targets" if y.is_floating_point() else f"{num_classes} classes"
        raise ConfigError(f"labelflip needs class labels (classification); got {kind}")
    return (num_classes - 1) - y
