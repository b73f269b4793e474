"""Aggregator names and parameters, without torch: validate an aggregator spec early.

:mod:`protocol.aggregation` applies the rules; a config (``gossip.aggregator``) or a command line
(``--aggregator``) checks its spec here, before any heavy import or network wait.

>>> check_aggregator_spec("clip:tau=0.5")
Spec(name='clip', params={'tau': 0.5})
>>> check_aggregator_spec("trimmed_mean:b=0")
Traceback (most recent call last):
...
protocol.errors.ConfigError: trimmed_mean: b=0 out of range; expected an integer >= 1
"""

from __future__ import annotations

from protocol.errors import ConfigError
from protocol.spec import Param, ParamChecks, Spec, check_named_spec

__all__ = ["AGGREGATOR_PARAMS", "check_aggregator_spec"]


def _check_tau(name: str, tau: Param) -> None:
    if isinstance(tau, bool) or not isinstance(tau, int | float):
        raise ConfigError(f"{name}: tau={tau!r} is not a number")
    if not 0.0 < tau < float("inf"):
        raise ConfigError(f"{name}: tau={tau!r} out of range; expected a finite number > 0")


def _check_b(name: str, b: Param) -> None:
    if isinstance(b, bool) or not isinstance(b, int):
        raise ConfigError(f"{name}: b={b!r} is not an integer")
    if b < 1:
        raise ConfigError(f"{name}: b={b} out of range; expected an integer >= 1")


def _check_fade(name: str, fade: Param) -> None:
    if not isinstance(fade, bool):
        raise ConfigError(f"{name}: fade={fade!r} is not true or false")


AGGREGATOR_PARAMS: ParamChecks = {
    "mean": {},
    "clip": {"tau": _check_tau, "b": _check_b, "fade": _check_fade},
    "trimmed_mean": {"b": _check_b},
    "median": {},
}
"""Every aggregation rule -> its parameters and their checks."""


def check_aggregator_spec(spec: Spec | str) -> Spec:
    """The parsed spec if it names a known rule with valid parameters; else ConfigError.

    ``trimmed_mean`` needs ``b``; ``clip`` takes either a fixed radius ``tau`` or ``b``, the
    number of farthest neighbours its adaptive radius clips (default: those farther than twice
    the median distance), and ``fade`` (default true: far neighbours' pull fades).
    """
    parsed = check_named_spec(spec, AGGREGATOR_PARAMS, kind="aggregator")
    if parsed.name == "trimmed_mean" and "b" not in parsed.params:
        raise ConfigError("trimmed_mean: needs b=B, the values trimmed at each end")
    if parsed.name == "clip" and {"tau", "b"} <= set(parsed.params):
        raise ConfigError("clip: give tau=T (a fixed radius) or b=B (adaptive), not both")
    return parsed
