"""The ``[privacy]`` section of ``peer.toml``: local differential privacy of this peer's updates.

Kept apart from :mod:`peer.config.sections` (which it extends) so that each module stays small.
Off unless both ``clip`` and ``sigma`` are set; docs/privacy.md says what the guarantee covers.

>>> PrivacyConfig(clip=1.0, sigma=2.0).params
DpParams(clip=1.0, sigma=2.0, delta=1e-05)
>>> PrivacyConfig(clip=1.0)
Traceback (most recent call last):
...
protocol.errors.ConfigError: privacy.sigma = None: expected a number > 0, set with privacy.clip
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from protocol.errors import ConfigError
from protocol.privacy_params import DEFAULT_DELTA, DpParams

__all__ = ["PrivacyConfig"]


@dataclass(frozen=True, kw_only=True)
class PrivacyConfig:
    SECTION: ClassVar[str] = "privacy"
    clip: float | None = None
    """L2 norm each round's local update is clipped to."""
    sigma: float | None = None
    """Noise multiplier: Gaussian noise of std ``sigma * clip`` per coordinate."""
    delta: float = DEFAULT_DELTA
    """The delta at which epsilon is reported."""
    seed: int | None = field(default=None, repr=False)
    """The noise's seed. Unset (the default): a fresh random one at every start, as privacy
    needs: whoever knows the seed can subtract the noise. Set it only to reproduce a run."""

    def __post_init__(self) -> None:
        if (self.clip is None) != (self.sigma is None):
            missing = "sigma" if self.sigma is None else "clip"
            other = "clip" if missing == "sigma" else "sigma"
            raise ConfigError(
                f"privacy.{missing} = None: expected a number > 0, set with privacy.{other}"
            )
        if self.params is None:  # off: delta is still checked, naming its key
            DpParams(clip=1.0, sigma=1.0, delta=self.delta, where="privacy.")
        if self.seed is not None and not 0 <= self.seed < 2**64:
            raise ConfigError(f"privacy.seed = {self.seed!r}: expected an integer in [0, 2**64)")

    @property
    def params(self) -> DpParams | None:
        """The mechanism's parameters, or None when privacy is off."""
        if self.clip is None or self.sigma is None:
            return None
        return DpParams(clip=self.clip, sigma=self.sigma, delta=self.delta, where="privacy.")
