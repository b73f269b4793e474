"""Failure settings shared by ``rumor sim`` and ``rumor up``: one grammar, one parser.

Torch-free, so that the peer launcher and the simulator read the very same specs (the seeded
schedules they turn into are in :mod:`protocol.failure_schedule`):

- crash ``PEER@ROUND[-RECOVER]``: the peer is down from ROUND until RECOVER (exclusive), or forever.
- churn ``up=U,down=D[,fraction=F]``: peers alternate up and down periods drawn from geometric
  distributions with means U and D rounds (a fraction F of the peers churn; the others stay up).
- partition window ``START-END[:fraction=F]``: during rounds [START, END) every link between peers
  0..floor(F*N)-1 and the rest is cut (by index, so on a ring or torus the groups are contiguous).
- stragglers ``FRACTION[:steps=S]``: a fixed, seeded set of peers does S local steps per round
  (default half of the configured steps, rounded down).

>>> Crash.parse("3@50-120")
Crash(peer=3, at=50, recover=120)
>>> PartitionWindow.parse("40-70")
PartitionWindow(start=40, end=70, fraction=0.5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol.errors import ConfigError
from protocol.spec import parse_spec

__all__ = ["Churn", "Crash", "PartitionWindow", "Stragglers", "check_fraction", "parse_drop"]

_CRASH = re.compile(r"^(\d+)@(\d+)(?:-(\d+))?$")
_WINDOW = re.compile(r"^(\d+)-(\d+)$")


def check_fraction(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def parse_drop(value: object) -> float:
    """A drop probability from a flag or TOML value.

    >>> parse_drop("0.2")
    0.2
    """
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ConfigError(f"drop must be a probability in [0, 1], got {value!r}") from exc
    return check_fraction(number, "drop probability")


@dataclass(frozen=True, kw_only=True)
class Crash:
    peer: int
    at: int
    recover: int | None = None

    def __post_init__(self) -> None:
        if self.peer < 0 or self.at < 0:
            raise ConfigError(f"crash: peer and round must be >= 0, got {self.peer}@{self.at}")
        if self.recover is not None and self.recover <= self.at:
            raise ConfigError(f"crash: recovery round {self.recover} must come after {self.at}")

    @classmethod
    def parse(cls, text: str) -> Crash:
        match = _CRASH.match(text.strip())
        if match is None:
            raise ConfigError(f"invalid crash {text!r}; expected PEER@ROUND or PEER@ROUND-RECOVER")
        peer, at, recover = match.groups()
        return cls(peer=int(peer), at=int(at), recover=None if recover is None else int(recover))


@dataclass(frozen=True, kw_only=True)
class Churn:
    up: float
    down: float
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not (self.up >= 1 and self.down >= 1):
            raise ConfigError(f"churn: mean up and down times must be >= 1 round, got {self}")
        check_fraction(self.fraction, "churn fraction")

    @classmethod
    def parse(cls, text: str) -> Churn:
        spec = parse_spec("churn:" + text)
        spec.expect("up", "down", "fraction")
        if "up" not in spec.params or "down" not in spec.params:
            raise ConfigError(f"invalid churn {text!r}; expected up=U,down=D[,fraction=F]")
        try:
            values = {k: float(v) for k, v in spec.params.items()}
        except ValueError as exc:
            raise ConfigError(f"invalid churn {text!r}; values must be numbers") from exc
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class PartitionWindow:
    start: int
    end: int
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            window = f"{self.start}-{self.end}"
            raise ConfigError(f"partition window: need 0 <= START < END, got {window}")
        check_fraction(self.fraction, "partition fraction")

    @classmethod
    def parse(cls, text: str) -> PartitionWindow:
        window, _, rest = text.strip().partition(":")
        match = _WINDOW.match(window)
        if match is None:
            raise ConfigError(f"invalid partition window {text!r}; expected START-END[:fraction=F]")
        spec = parse_spec("window:" + rest)
        spec.expect("fraction")
        fraction = spec.params.get("fraction", 0.5)
        return cls(
            start=int(match[1]), end=int(match[2]), fraction=check_fraction(fraction, "fraction")
        )


@dataclass(frozen=True, kw_only=True)
class Stragglers:
    fraction: float
    steps: int | None = None

    def __post_init__(self) -> None:
        check_fraction(self.fraction, "straggler fraction")
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"stragglers: steps must be >= 0, got {self.steps}")

    @classmethod
    def parse(cls, text: str) -> Stragglers:
        head, _, rest = text.strip().partition(":")
        spec = parse_spec("stragglers:" + rest)
        spec.expect("steps")
        steps = spec.params.get("steps")
        if steps is not None and not isinstance(steps, int):
            raise ConfigError(f"stragglers: steps must be an integer, got {steps!r}")
        try:
            fraction = float(head)
        except ValueError as exc:
            raise ConfigError(f"invalid stragglers {text!r}; expected FRACTION[:steps=S]") from exc
        return cls(fraction=check_fraction(fraction, "straggler fraction"), steps=steps)
