"""The configuration of one simulation run: a frozen dataclass validated on construction.

Built from keyword arguments, from a TOML file (``--config run.toml``: the same names as the
CLI flags with underscores, failure settings at top level or in a ``[failures]`` table), or
from both, the CLI winning.

>>> SimConfig(task="consensus", topology="ring", peers=8, rounds=5).engine
'vector'
>>> SimConfig(peers=1)
Traceback (most recent call last):
...
protocol.errors.ConfigError: peers must be an integer >= 2, got 1
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from protocol.aggregator_names import check_aggregator_spec
from protocol.defaults import BATCH_SIZE, CONSENSUS_DIM, LEARNING_RATE, LOCAL_STEPS
from protocol.errors import ConfigError
from protocol.privacy_params import DpParams, parse_dp
from protocol.spec import parse_spec
from sim.availability import Availability
from sim.device import check_device_name
from sim.failures import (
    Byzantine,
    Churn,
    Crash,
    FailureConfig,
    PartitionWindow,
    Stragglers,
)

__all__ = [
    "DEFAULT_MODELS",
    "ENGINES",
    "TASKS",
    "EngineName",
    "SimConfig",
    "config_from_settings",
    "failures_from_mapping",
    "load_toml",
]

EngineName: TypeAlias = Literal["vector", "loop"]
ENGINES: tuple[EngineName, ...] = ("vector", "loop")
TASKS = ("consensus", "synthetic", "fmnist", "mnist")
DEFAULT_MODELS = {"consensus": None, "synthetic": "logreg", "fmnist": "mlp", "mnist": "mlp"}
TomlValue: TypeAlias = object


def _positive_int(value: object, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _positive_float(value: object, name: str) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not ok or value != value:  # the second test catches NaN
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """One simulation run. ``gamma=None`` means the codec's documented default."""

    task: str = "consensus"
    model: str | None = None
    topology: str = "ring"
    peers: int = 16
    rounds: int = 100
    seed: int = 0
    partition: str = "iid"
    codec: str = "raw"
    gamma: float | None = None
    aggregator: str = "mean"
    """mean, clip[:tau=T|b=B,fade=false], trimmed_mean:b=B or median (protocol.aggregation)."""
    dp: str | None = None
    """Local differential privacy ``clip=C,sigma=S[,delta=D]`` (protocol.privacy); None: off."""
    keyframe_interval: int = 10
    """As the daemon's default (peer.config): under message loss a stale copy waits this long."""
    local_steps: int = LOCAL_STEPS
    batch_size: int = BATCH_SIZE
    lr: float = LEARNING_RATE
    failures: FailureConfig = field(default_factory=FailureConfig)
    engine: EngineName = "vector"
    eval_every: int = 10
    dim: int = CONSENSUS_DIM
    """Vector length for the consensus task."""
    data_path: str | None = None
    data: str | None = None
    """A data plug-in ``package.module:function[:k=v,...]`` or ``npz:path=FILE``; replaces
    ``task`` (which then reads ``data``)."""
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    optimizer: str = "sgd"
    device: str = "cpu"
    """Where tensors live: cpu, cuda (cuda:K) or auto (cuda when available); see sim.device."""
    profile: bool = False
    """Time each phase of every round (train, compress, mix, ...): see sim.profile."""
    out: Path | None = None

    def __post_init__(self) -> None:
        if self.data is not None:
            if self.task not in ("consensus", "data"):
                raise ConfigError(
                    f"--data replaces --task; got both {self.data!r} and {self.task!r}"
                )
            object.__setattr__(self, "task", "data")
            if self.model is None:
                raise ConfigError(
                    "--data needs --model (a built-in name or package.module:function)"
                )
        elif self.task not in TASKS and ":" not in self.task:
            raise ConfigError(
                f"unknown task {self.task!r}; expected one of {', '.join(TASKS)} or module:function"
            )
        if self.model is None:
            object.__setattr__(self, "model", DEFAULT_MODELS.get(self.task))
        for name in ("peers", "rounds", "keyframe_interval", "batch_size", "eval_every", "dim"):
            _positive_int(getattr(self, name), name, 2 if name == "peers" else 1)
        _positive_int(self.local_steps, "local_steps", 0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        _positive_float(self.lr, "lr")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; expected vector or loop")
        for name in ("topology", "partition", "codec", "optimizer"):
            parse_spec(getattr(self, name))  # raises ConfigError naming the bad text
        check_aggregator_spec(self.aggregator)
        if self.dp is not None and self.privacy is not None and self.task == "consensus":
            raise ConfigError("--dp needs a task with a model to train; consensus has none")
        if self.gamma is not None:
            _positive_float(self.gamma, "gamma")
            if self.gamma > 1:
                raise ConfigError(f"gamma must be in (0, 1], got {self.gamma}")
        self.failures.check(self.peers)
        check_device_name(self.device)
        if not isinstance(self.profile, bool):
            raise ConfigError(f"profile must be true or false, got {self.profile!r}")

    @property
    def privacy(self) -> DpParams | None:
        """The parsed ``dp`` setting (ConfigError naming ``--dp`` if it is bad)."""
        if self.dp is None:
            return None
        if not isinstance(self.dp, str):
            raise ConfigError(f"dp must be a string clip=C,sigma=S[,delta=D], got {self.dp!r}")
        return parse_dp(self.dp)

    @property
    def consensus(self) -> bool:
        return self.task == "consensus"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for summary.json."""
        data = dataclasses.asdict(self)
        data["out"] = None if self.out is None else str(self.out)
        return data


def _as_list(value: TomlValue, name: str) -> list[str]:
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    raise ConfigError(f"{name} must be a string or a list of strings, got {value!r}")


def failures_from_mapping(values: Mapping[str, TomlValue]) -> FailureConfig:
    """Failure settings from CLI-style strings: drop, crash, churn, partition_window, ..."""
    allowed = set(_FAILURE_KEYS)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"unknown failure setting(s) {', '.join(unknown)}; accepted: {allowed}")

    def text(key: str) -> str | None:
        value = values.get(key)
        return None if value is None else str(value)

    drop = values.get("drop", 0.0)
    if isinstance(drop, bool) or not isinstance(drop, int | float):
        raise ConfigError(f"drop must be a probability in [0, 1], got {drop!r}")
    crash = values.get("crash")
    churn, window = text("churn"), text("partition_window")
    stragglers, byzantine = text("stragglers"), text("byzantine")
    availability = text("availability")
    return FailureConfig(
        drop=float(drop),
        crashes=tuple(Crash.parse(c) for c in ([] if crash is None else _as_list(crash, "crash"))),
        churn=None if churn is None else Churn.parse(churn),
        partition=None if window is None else PartitionWindow.parse(window),
        stragglers=None if stragglers is None else Stragglers.parse(stragglers),
        byzantine=None if byzantine is None else Byzantine.parse(byzantine),
        availability=None if availability is None else Availability.parse(availability),
    )


_FAILURE_KEYS = (
    "drop",
    "crash",
    "churn",
    "partition_window",
    "stragglers",
    "byzantine",
    "availability",
)


def load_toml(path: Path) -> dict[str, TomlValue]:
    """Read a run file into flat settings (failure keys lifted out of ``[failures]``)."""
    try:
        with path.open("rb") as handle:
            data: dict[str, TomlValue] = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {str(path)!r} is not valid TOML: {exc}") from exc
    flat = {k.replace("-", "_"): v for k, v in data.items() if k != "failures"}
    nested = data.get("failures", {})
    if not isinstance(nested, dict):
        raise ConfigError(f"[failures] in {str(path)!r} must be a table")
    flat.update({k.replace("-", "_"): v for k, v in nested.items()})
    return flat


def config_from_settings(settings: Mapping[str, TomlValue]) -> SimConfig:
    """Build a SimConfig from flat settings, checking names and types."""
    fields = {f.name for f in dataclasses.fields(SimConfig)} - {"failures"}
    unknown = sorted(set(settings) - fields - set(_FAILURE_KEYS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; accepted: {sorted(fields)}")
    failures = failures_from_mapping({k: v for k, v in settings.items() if k in _FAILURE_KEYS})
    kwargs = {k: v for k, v in settings.items() if k in fields}
    if kwargs.get("out") is not None:
        kwargs["out"] = Path(str(kwargs["out"]))
    try:
        return SimConfig(failures=failures, **kwargs)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"bad setting type: {exc}") from exc
