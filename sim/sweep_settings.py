"""What ``rumor sweep`` runs: a frozen, validated grid of topologies x codecs x failures x seeds.

Torch-free and pure: the command line parses its list flags with the ``parse_*`` functions here
(each error names the flag and the bad value) into :class:`SweepSettings`, which checks the whole
grid on construction, before any run starts.

>>> split_list("ring,topk:fraction=0.1,gamma=0.3,sign")
['ring', 'topk:fraction=0.1,gamma=0.3', 'sign']
>>> parse_seeds("0,1,2")
(0, 1, 2)
>>> parse_seeds("a")
Traceback (most recent call last):
...
protocol.errors.ConfigError: --seeds 'a': 'a' is not an integer
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeVar

from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec
from sim.config import SimConfig, failures_from_mapping
from sim.failures import FailureConfig
from topology.schedules import schedule_from_spec

__all__ = [
    "DEFAULT_TARGET_DISTANCE",
    "CodecChoice",
    "SweepSettings",
    "Target",
    "parse_codecs",
    "parse_failures",
    "parse_seeds",
    "parse_topologies",
    "split_list",
]

_T = TypeVar("_T")
Target: TypeAlias = Literal["accuracy", "distance"] | None
DEFAULT_TARGET_DISTANCE = 1e-6
"""Consensus target of the consensus task, relative to the starting distance."""


@dataclass(frozen=True, kw_only=True)
class CodecChoice:
    codec: str
    gamma: float | None = None
    """None: the codec's default (or the sweep's ``--gamma``)."""


def split_list(text: str) -> list[str]:
    """Split on commas, keeping ``key=value`` fragments with the spec before them."""
    items: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if items and "=" in token and ":" not in token:
            items[-1] += "," + token
        else:
            items.append(token)
    return items


def _items(flag: str, text: str) -> list[str]:
    items = split_list(text)
    if not items:
        raise ConfigError(f"{flag} {text!r}: expected a comma-separated list, got no item")
    return items


def parse_topologies(text: str) -> tuple[str, ...]:
    """``--topologies``: topology specs (checked for syntax here, for sense by the settings)."""
    items = _items("--topologies", text)
    for item in items:
        _named("--topologies", item, parse_spec, item)
    return tuple(items)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds``: integers >= 0."""
    seeds = []
    for item in _items("--seeds", text):
        try:
            seed = int(item)
        except ValueError:
            raise ConfigError(f"--seeds {text!r}: {item!r} is not an integer") from None
        if seed < 0:
            raise ConfigError(f"--seeds {text!r}: {seed} is negative; seeds are >= 0")
        seeds.append(seed)
    return tuple(seeds)


def parse_codecs(text: str) -> tuple[CodecChoice, ...]:
    """``--codecs``: codec specs, each optionally carrying ``gamma=G`` in (0, 1]."""
    choices = []
    for item in _items("--codecs", text):
        spec = _named("--codecs", item, parse_spec, item)
        params = dict(spec.params)
        gamma = params.pop("gamma", None)
        number = isinstance(gamma, int | float) and not isinstance(gamma, bool)
        if gamma is not None and not (number and 0 < float(gamma) <= 1):
            raise ConfigError(f"--codecs {item!r}: gamma must be a number in (0, 1], got {gamma!r}")
        value = None if gamma is None else float(gamma)
        choices.append(CodecChoice(codec=str(Spec(spec.name, params)), gamma=value))
    return tuple(choices)


def parse_failures(text: str) -> tuple[FailureConfig, ...]:
    """``--failures``: ';'-separated settings, each ``none`` or key=value parts joined by '+'."""
    parts = [part.strip() for part in text.split(";")]
    if not any(parts):
        raise ConfigError(f"--failures {text!r}: expected ';'-separated settings, got none")
    return tuple(_named("--failures", part, _failure_setting, part) for part in parts)


def _failure_setting(text: str) -> FailureConfig:
    if text == "none":
        return FailureConfig()
    if not text:
        raise ConfigError("empty setting (write none for no failures)")
    values: dict[str, object] = {}
    for part in text.split("+"):
        key, eq, value = part.strip().partition("=")
        if not eq:
            raise ConfigError(f"{part!r} is not key=value or none")
        key = key.replace("-", "_")
        if key == "drop":
            try:
                values[key] = float(value)
            except ValueError:
                raise ConfigError(f"drop={value!r} is not a number") from None
        else:
            values[key] = value.replace("/", ",")
    return failures_from_mapping(values)


def _named(flag: str, item: str, build: Callable[[str], _T], text: str) -> _T:
    """``build(text)``, a ConfigError from it naming the flag and the item."""
    try:
        return build(text)
    except ConfigError as exc:
        raise ConfigError(f"{flag} {item!r}: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class SweepSettings:
    """The grid and its targets. ``base`` holds every other setting (the CLI's flags)."""

    base: SimConfig
    topologies: tuple[str, ...] = ()
    """Empty: the base's topology; likewise for codecs, failures and seeds."""
    codecs: tuple[CodecChoice, ...] = ()
    failures: tuple[FailureConfig, ...] = ()
    seeds: tuple[int, ...] = ()
    target_acc: float | None = None
    """Rounds and bytes to this mean metric (tasks with a model): accuracy by default, reached
    at or above it; a lower-is-better metric such as mse, at or below it."""
    target_distance: float | None = None
    """Rounds and bytes to this relative consensus distance (consensus task; default 1e-6)."""

    def __post_init__(self) -> None:
        acc, distance = self.target_acc, self.target_distance
        accuracy = self.base.metric == "accuracy"
        if acc is not None and not 0 < acc <= (1 if accuracy else math.inf):
            bound = "in (0, 1]" if accuracy else "> 0"
            raise ConfigError(f"--target-acc must be {bound}, got {acc}")
        if distance is not None and not 0 < distance < 1:
            raise ConfigError(f"--target-distance must be in (0, 1), got {distance}")
        if acc is not None and self.base.consensus:
            raise ConfigError("--target-acc needs a task with a model; consensus has no accuracy")
        if distance is not None and not self.base.consensus:
            raise ConfigError("--target-distance is for the consensus task; use --target-acc")
        if self.base.consensus and distance is None:
            object.__setattr__(self, "target_distance", DEFAULT_TARGET_DISTANCE)
        for topology in self.topologies:  # unknown families fail now, not after other runs
            _named("--topologies", topology, self._schedule, topology)
        if self.codecs:
            from protocol.codecs import codec_from_spec  # torch: only once the flags parse

            for choice in self.codecs:
                _named("--codecs", choice.codec, codec_from_spec, choice.codec)
        self.grid()  # every run's SimConfig validates on construction

    def _schedule(self, topology: str) -> object:
        return schedule_from_spec(parse_spec(topology), self.base.peers, seed=self.base.seed)

    @property
    def target(self) -> Target:
        """What "to target" means in this sweep; None: nothing (no target was given)."""
        if self.target_acc is not None:
            return "accuracy"
        return "distance" if self.target_distance is not None else None

    def grid(self) -> list[SimConfig]:
        """Every run, topology-major, seeds innermost."""
        base = self.base
        codecs = self.codecs or (CodecChoice(codec=base.codec, gamma=base.gamma),)
        runs = []
        for topology in self.topologies or (base.topology,):
            for choice in codecs:
                for failures in self.failures or (base.failures,):
                    for seed in self.seeds or (base.seed,):
                        runs.append(
                            dataclasses.replace(
                                base,
                                topology=topology,
                                codec=choice.codec,
                                gamma=base.gamma if choice.gamma is None else choice.gamma,
                                failures=failures,
                                seed=seed,
                                out=None,
                            )
                        )
        return runs
