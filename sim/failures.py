"""Failure models: seeded, reproducible masks that say who is up and which messages arrive.

Every mask is a pure function of the run's seed and the round (churn is drawn once for the whole
run, which is the same thing). Both engines read the same masks, so failures never break parity.

CLI and TOML formats (one spec syntax, the project's ``name:key=value`` family):

- drop ``P``: each directed message is lost with probability P, independently per link and round.
- crash ``PEER@ROUND[-RECOVER]``: the peer is down from ROUND until RECOVER (exclusive), or forever.
- churn ``up=U,down=D[,fraction=F]``: peers alternate up and down periods drawn from geometric
  distributions with means U and D rounds (a fraction F of the peers churn; the others stay up).
- partition window ``START-END[:fraction=F]``: during rounds [START, END) every link between peers
  0..floor(F*N)-1 and the rest is cut (by index, so on a ring or torus the groups are contiguous).
- stragglers ``FRACTION[:steps=S]``: a fixed, seeded set of peers does S local steps per round
  (default half of the configured steps, rounded down).
- byzantine ``FRACTION[:attack=A,key=value,...]``: a fixed, seeded set of peers attacks with A,
  one of :mod:`protocol.attacks` (signflip, noise, alie, ipm, dissensus, labelflip, with their
  parameters): it publishes the attack instead of its model and never mixes in what it receives,
  except under labelflip, where it follows the protocol but trains on flipped labels.

The masks these settings produce per round are in :mod:`sim.failure_masks`.

>>> Crash.parse("3@50-120")
Crash(peer=3, at=50, recover=120)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from protocol.attack_names import check_attack_spec, mixes
from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec
from sim.availability import Availability

__all__ = [
    "Byzantine",
    "Churn",
    "Crash",
    "FailureConfig",
    "PartitionWindow",
    "Stragglers",
]

_CRASH = re.compile(r"^(\d+)@(\d+)(?:-(\d+))?$")
_WINDOW = re.compile(r"^(\d+)-(\d+)$")


def _fraction(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


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
        _fraction(self.fraction, "churn fraction")

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
        _fraction(self.fraction, "partition fraction")

    @classmethod
    def parse(cls, text: str) -> PartitionWindow:
        window, _, rest = text.strip().partition(":")
        match = _WINDOW.match(window)
        if match is None:
            raise ConfigError(f"invalid partition window {text!r}; expected START-END[:fraction=F]")
        spec = parse_spec("window:" + rest)
        spec.expect("fraction")
        fraction = spec.params.get("fraction", 0.5)
        return cls(start=int(match[1]), end=int(match[2]), fraction=_fraction(fraction, "fraction"))


@dataclass(frozen=True, kw_only=True)
class Stragglers:
    fraction: float
    steps: int | None = None

    def __post_init__(self) -> None:
        _fraction(self.fraction, "straggler fraction")
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
        return cls(fraction=_fraction(fraction, "straggler fraction"), steps=steps)


@dataclass(frozen=True, kw_only=True)
class Byzantine:
    """A seeded set of attacking peers and their attack (:mod:`protocol.attacks`)."""

    fraction: float
    attack: Spec = field(default_factory=lambda: Spec("signflip"))

    def __post_init__(self) -> None:
        _fraction(self.fraction, "byzantine fraction")
        check_attack_spec(self.attack)

    @property
    def mixes(self) -> bool:
        """Whether the attackers still mix what they receive (labelflip does)."""
        return mixes(self.attack)

    @classmethod
    def parse(cls, text: str) -> Byzantine:
        """``FRACTION[:attack=A,key=value,...]``: the keys besides ``attack`` are A's.

        >>> Byzantine.parse("0.1:attack=alie,z=2")
        Byzantine(fraction=0.1, attack=Spec(name='alie', params={'z': 2}))
        """
        head, _, rest = text.strip().partition(":")
        params = dict(parse_spec("byzantine:" + rest).params)
        name = params.pop("attack", "signflip")
        try:
            fraction = float(head)
        except ValueError as exc:
            raise ConfigError(
                f"invalid byzantine {text!r}; expected FRACTION[:attack=A,key=value,...]"
            ) from exc
        attack = check_attack_spec(Spec(str(name), params))
        return cls(fraction=_fraction(fraction, "byzantine fraction"), attack=attack)


@dataclass(frozen=True, kw_only=True)
class FailureConfig:
    """All failure settings of one run; the default is a perfect network."""

    drop: float = 0.0
    crashes: tuple[Crash, ...] = field(default_factory=tuple)
    churn: Churn | None = None
    partition: PartitionWindow | None = None
    stragglers: Stragglers | None = None
    byzantine: Byzantine | None = None
    availability: Availability | None = None
    """Peers that train only inside a daily window (:mod:`sim.availability`)."""

    def __post_init__(self) -> None:
        _fraction(self.drop, "drop probability")

    def check(self, peers: int) -> None:
        """Raise ConfigError if a crash names a peer outside 0..peers-1."""
        for crash in self.crashes:
            if crash.peer >= peers:
                raise ConfigError(f"crash: peer {crash.peer} does not exist (peers 0..{peers - 1})")

    @property
    def lossy(self) -> bool:
        """Whether any message can go missing, so CHOCO copies can fall out of sync."""
        down = bool(self.crashes) or self.churn is not None or self.availability is not None
        return self.drop > 0 or down or self.partition is not None

    def describe(self) -> str:
        """A short label for tables and plot legends, e.g. ``drop=0.3`` or ``none``."""
        parts = [f"drop={self.drop:g}"] if self.drop else []
        parts += [f"crash={c.peer}@{c.at}" for c in self.crashes]
        if self.churn:
            parts.append(f"churn={self.churn.up:g}/{self.churn.down:g}")
        if self.partition:
            parts.append(f"cut={self.partition.start}-{self.partition.end}")
        if self.stragglers:
            parts.append(f"stragglers={self.stragglers.fraction:g}")
        if self.byzantine:
            attack = str(self.byzantine.attack).replace(",", "/")
            parts.append(f"byz={self.byzantine.fraction:g}:{attack}")
        if self.availability:
            a = self.availability
            parts.append(f"avail={a.fraction:g}:{a.window}/{a.period}")
        return ",".join(parts) or "none"
