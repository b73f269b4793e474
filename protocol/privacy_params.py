"""Differential-privacy settings, without torch: ``clip=C,sigma=S[,delta=D]`` parsed and checked.

:mod:`protocol.privacy` applies them to a peer's update and :mod:`protocol.privacy_accounting`
turns them into (epsilon, delta); a command line (``--dp``) or a config (``[privacy]``) checks
them here first.

>>> parse_dp("clip=1,sigma=0.8")
DpParams(clip=1.0, sigma=0.8, delta=1e-05)
>>> parse_dp("clip=1,sigma=0")
Traceback (most recent call last):
...
protocol.errors.ConfigError: --dp: sigma = 0.0: expected a finite number > 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from protocol.errors import ConfigError

__all__ = ["DEFAULT_DELTA", "DpParams", "parse_dp"]

DEFAULT_DELTA = 1e-5
"""The delta reported when none is given: the chance, per peer, that the epsilon bound fails."""


def _check(where: str, name: str, value: object, *, below_one: bool = False) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = number and math.isfinite(float(value)) and float(value) > 0  # type: ignore[arg-type]
    if ok and below_one:
        ok = float(value) < 1  # type: ignore[arg-type]
    if not ok:
        expected = "a number in (0, 1)" if below_one else "a finite number > 0"
        raise ConfigError(f"{where}{name} = {value!r}: expected {expected}")
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class DpParams:
    """Clip each local update to L2 norm ``clip``, add N(0, (sigma * clip)^2) per coordinate,
    and report epsilon at ``delta``. Errors name the key, prefixed by ``where``."""

    clip: float
    sigma: float
    """The noise multiplier: the noise's standard deviation in units of ``clip``."""
    delta: float = DEFAULT_DELTA
    where: str = field(default="", compare=False)
    """How errors name the keys (``privacy.`` for a config, ``--dp: `` for a flag)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "clip", _check(self.where, "clip", self.clip))
        object.__setattr__(self, "sigma", _check(self.where, "sigma", self.sigma))
        object.__setattr__(self, "delta", _check(self.where, "delta", self.delta, below_one=True))

    def __repr__(self) -> str:
        return f"DpParams(clip={self.clip}, sigma={self.sigma}, delta={self.delta})"

    @property
    def noise_std(self) -> float:
        """The noise's standard deviation per coordinate, ``sigma * clip``."""
        return self.sigma * self.clip

    def describe(self) -> str:
        """The ``--dp`` text that gives these settings back.

        >>> parse_dp(DpParams(clip=0.5, sigma=2, delta=1e-6).describe())
        DpParams(clip=0.5, sigma=2.0, delta=1e-06)
        """
        return f"clip={self.clip:g},sigma={self.sigma:g},delta={self.delta:g}"

    def to_dict(self) -> dict[str, float]:
        return {"clip": self.clip, "sigma": self.sigma, "delta": self.delta}


def parse_dp(text: str) -> DpParams:
    """``clip=C,sigma=S[,delta=D]`` (any order); a ConfigError names the bad part."""
    where = "--dp: "
    values: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in ("clip", "sigma", "delta"):
            raise ConfigError(
                f"--dp {text!r}: {part!r} is not clip=C, sigma=S or delta=D "
                "(expected clip=C,sigma=S[,delta=D])"
            )
        if key in values:
            raise ConfigError(f"--dp {text!r}: {key} given twice")
        try:
            values[key] = float(value)
        except ValueError:
            raise ConfigError(f"--dp {text!r}: {key}={value!r} is not a number") from None
    missing = [k for k in ("clip", "sigma") if k not in values]
    if missing:
        raise ConfigError(f"--dp {text!r}: needs {' and '.join(missing)} (clip=C,sigma=S)")
    return DpParams(
        clip=values["clip"],
        sigma=values["sigma"],
        delta=values.get("delta", DEFAULT_DELTA),
        where=where,
    )
