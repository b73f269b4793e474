"""Attack names and parameters, without torch: validate an attack spec early.

:mod:`protocol.attacks` computes what a Byzantine peer publishes; a command line
(``rumor peer --attack``, ``rumor up --byzantine``, ``rumor sim --byzantine``) checks its spec
here, before any heavy import or network wait. docs/robustness.md defines every attack.

>>> check_attack_spec("alie:z=1.5")
Spec(name='alie', params={'z': 1.5})
>>> check_attack_spec("ipm:eps=-1")
Traceback (most recent call last):
...
protocol.errors.ConfigError: ipm: eps=-1 out of range; expected a finite number > 0
>>> alie_z(50, 12) > 0, alie_z(16, 2)
(True, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

from protocol.errors import ConfigError
from protocol.spec import Param, ParamChecks, Spec, check_named_spec

__all__ = [
    "ALIE_FALLBACK_Z",
    "ATTACK_PARAMS",
    "DEFAULT_DISSENSUS_EPS",
    "DEFAULT_IPM_EPS",
    "NEIGHBOUR_ATTACKS",
    "alie_z",
    "check_attack_spec",
    "mixes",
    "resolve_attack",
]

DEFAULT_IPM_EPS = 0.1
"""IPM's epsilon when none is given: the value of the ClippedGossip reference code."""
DEFAULT_DISSENSUS_EPS = 1.5
"""Dissensus's epsilon when none is given: the value of the ClippedGossip experiments."""
ALIE_FALLBACK_Z = 1.0
"""ALIE's z where the paper's formula gives no positive value (few attackers): rumor's choice."""

NEIGHBOUR_ATTACKS = frozenset({"alie", "ipm", "dissensus"})
"""Attacks computed from the copies the attacker received from its in-neighbours."""

ParamCheck = Callable[[str, Param], None]


def _number(name: str, key: str, value: Param, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: {key}={value!r} is not a number")
    if not math.isfinite(value) or (positive and value <= 0):
        expected = "a finite number > 0" if positive else "a finite number"
        raise ConfigError(f"{name}: {key}={value!r} out of range; expected {expected}")


def _positive(key: str) -> ParamCheck:
    return lambda name, value: _number(name, key, value, positive=True)


def _finite(key: str) -> ParamCheck:
    return lambda name, value: _number(name, key, value, positive=False)


ATTACK_PARAMS: ParamChecks = {
    "signflip": {"scale": _positive("scale")},
    "noise": {"scale": _positive("scale")},
    "alie": {"z": _finite("z")},
    "ipm": {"eps": _positive("eps")},
    "dissensus": {"eps": _positive("eps")},
    "labelflip": {},
}
"""Every attack -> its parameters and their checks."""


def check_attack_spec(spec: Spec | str) -> Spec:
    """The parsed spec if it names a known attack with valid parameters; else ConfigError."""
    return check_named_spec(spec, ATTACK_PARAMS, kind="attack")


def mixes(spec: Spec) -> bool:
    """Whether a peer running this attack still mixes what it receives (data poisoning does:
    it follows the protocol; every other attack publishes a forged model and never mixes)."""
    return spec.name == "labelflip"


def alie_z(n: int, f: int) -> float:
    """ALIE's z for ``n`` peers of which ``f`` attack (Baruch et al. 2019, section 3): with
    ``s = floor(n / 2 + 1) - f`` supporters needed, ``z = Phi^-1((n - f - s) / (n - f))``;
    :data:`ALIE_FALLBACK_Z` where that is not a positive number (too few attackers for the
    formula to ask for any shift, or no honest peer).

    >>> round(alie_z(50, 24), 4)
    1.4261
    """
    honest = n - f
    if honest <= 0 or f <= 0:
        return ALIE_FALLBACK_Z
    s = math.floor(n / 2 + 1) - f
    p = (honest - s) / honest
    if not 0.5 < p < 1:
        return ALIE_FALLBACK_Z
    return NormalDist().inv_cdf(p)


def resolve_attack(spec: Spec, *, peers: int, attackers: int) -> Spec:
    """``spec`` with every default made explicit: ``alie`` gets :func:`alie_z` of the swarm,
    ``ipm`` and ``dissensus`` their epsilon, ``signflip`` and ``noise`` scale 1.

    >>> str(resolve_attack(Spec("ipm"), peers=16, attackers=2))
    'ipm:eps=0.1'
    """
    check_attack_spec(spec)
    defaults: dict[str, dict[str, Param]] = {
        "alie": {"z": alie_z(peers, attackers)} if spec.name == "alie" else {},
        "ipm": {"eps": DEFAULT_IPM_EPS},
        "dissensus": {"eps": DEFAULT_DISSENSUS_EPS},
        "signflip": {"scale": 1.0},
        "noise": {"scale": 1.0},
    }
    return Spec(spec.name, {**defaults.get(spec.name, {}), **spec.params})
