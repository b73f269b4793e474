"""The sections of ``peer.toml``, one frozen dataclass each, validated on construction.

Every error names the key path (``gossip.round_timeout_s``), the value and what is accepted.
Optional values default to None, so that a TOML file can leave them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, NoReturn, TypeAlias

from peer.config.fleet import AvailabilityConfig, MetricsConfig
from peer.config.privacy import PrivacyConfig
from peer.config.security import SecurityConfig
from peer.tasks.plugin import LOSSES, METRICS, data_ref, is_plugin, parse_plugin
from peer.tasks.specs import check_model_spec, check_partition_spec, check_task
from protocol.aggregator_names import check_aggregator_spec
from protocol.chunking import MQTT_MAX_PACKET
from protocol.codec_names import check_codec_spec
from protocol.defaults import BATCH_SIZE, LEARNING_RATE, LOCAL_STEPS
from protocol.errors import ConfigError
from protocol.spec import parse_spec
from protocol.topics import DEFAULT_PREFIX, id_problem

__all__ = [
    "BrokerConfig",
    "GossipConfig",
    "IdentityConfig",
    "LearningConfig",
    "LimitsConfig",
    "LogLevel",
    "LoggingConfig",
    "PeerConfig",
    "StorageConfig",
    "TopologyConfig",
]

LogLevel: TypeAlias = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def config_error(key: str, value: object, expected: str) -> ConfigError:
    """The one error shape of the config: key path, value, what is accepted."""
    shown = repr(str(value)) if isinstance(value, Path) else repr(value)
    return ConfigError(f"{key} = {shown}: expected {expected}")


def fail(key: str, value: object, expected: str) -> NoReturn:
    raise config_error(key, value, expected)


class _Section:
    SECTION: ClassVar[str]

    def _require(self, ok: bool, name: str, expected: str) -> None:
        if not ok:
            fail(f"{self.SECTION}.{name}", getattr(self, name), expected)

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            self._require(math.isfinite(value) and value > 0, name, "a finite number > 0")

    def _spec(self, name: str, check: Callable[[str], object] = parse_spec) -> None:
        """A spec string, checked by ``check``; the error names the key and says why."""
        value = getattr(self, name)
        try:
            check(value)
        except ConfigError as exc:
            raise ConfigError(f"{self.SECTION}.{name}: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class IdentityConfig(_Section):
    SECTION: ClassVar[str] = "identity"
    peer: str
    swarm: str = "default"
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        for name in ("peer", "swarm", "prefix"):
            problem = id_problem(getattr(self, name))
            self._require(problem is None, name, f"a single MQTT topic level ({problem})")


@dataclass(frozen=True, kw_only=True)
class BrokerConfig(_Section):
    SECTION: ClassVar[str] = "broker"
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: int = 30
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    max_payload: int = 126_976
    """Bytes per MQTT message before chunking: AWS IoT Core's 128 KiB less room for headers."""
    reconnect_base_s: float = 0.5
    reconnect_cap_s: float = 30.0
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self._require(bool(self.host.strip()), "host", "a host name or address")
        self._require(1 <= self.port <= 65535, "port", "1 to 65535")
        self._require(1 <= self.keepalive_s <= 65535, "keepalive_s", "1 to 65535 seconds")
        self._require(
            (self.tls_cert is None) == (self.tls_key is None), "tls_key", "set with tls_cert"
        )
        self._require(
            self.password is None or self.password_file is None,
            "password_file",
            "unset when password is set (one or the other)",
        )
        has_secret = self.password is not None or self.password_file is not None
        self._require(
            self.username is not None or not has_secret, "username", "set with a password"
        )
        self._require(
            256 <= self.max_payload <= MQTT_MAX_PACKET, "max_payload", "256 to 268435455 bytes"
        )
        self._positive("reconnect_base_s", "reconnect_cap_s", "connect_timeout_s")
        self._require(
            self.reconnect_cap_s >= self.reconnect_base_s,
            "reconnect_cap_s",
            f">= reconnect_base_s ({self.reconnect_base_s})",
        )

    def read_password(self) -> str | None:
        """The password, from ``password`` or the first line of ``password_file``."""
        if self.password_file is None:
            return self.password
        try:
            lines = self.password_file.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail("broker.password_file", self.password_file, f"a readable text file ({exc})")
        if not lines or not lines[0]:
            fail("broker.password_file", self.password_file, "the password on its first line")
        return lines[0]


@dataclass(frozen=True, kw_only=True)
class TopologyConfig(_Section):
    """Where the graph comes from: exactly one of ``file``, ``family`` or ``membership``."""

    SECTION: ClassVar[str] = "topology"
    file: Path | None = None
    family: str | None = None
    size: int | None = None
    seed: int = 0
    node: int | str | None = None
    """This peer's node: its index (family), or a node name or index (file; default the peer id)."""
    membership: bool = False

    def _build_family(self, family: str) -> None:
        """Build the graph once, as every peer will: a bad family or size fails here."""
        from topology import build_graph  # networkx: only for a family topology

        assert self.size is not None
        if build_graph(family, self.size, seed=self.seed).is_directed():
            raise ConfigError(
                f"{family!r} builds a directed graph; a peer mixes with Metropolis weights, "
                "which need an undirected one (drop directed=true)"
            )

    def __post_init__(self) -> None:
        sources = [n for n in ("file", "family") if getattr(self, n) is not None]
        sources += ["membership"] if self.membership else []
        if len(sources) != 1:
            fail(
                "topology",
                ", ".join(sources) or "nothing",
                "exactly one of file, family (with size) or membership = true",
            )
        if self.family is not None:
            self._require(self.size is not None and self.size >= 2, "size", "an int >= 2")
            self._spec("family", self._build_family)
            self._require(isinstance(self.node, int), "node", "this peer's node index (an int)")
        else:
            self._require(self.size is None, "size", "unset unless family is set")
        self._require(self.seed >= 0, "seed", "an int >= 0")
        if isinstance(self.node, int) and self.size is not None:
            self._require(0 <= self.node < self.size, "node", f"0 to {self.size - 1}")
        self._require(
            not (self.membership and self.node is not None), "node", "unset with membership"
        )


def _check_model(text: str) -> object:
    """A built-in model spec or a module plug-in ``package.module:function[:key=value,...]``."""
    return parse_plugin(text, "model") if is_plugin(text) else check_model_spec(text)


@dataclass(frozen=True, kw_only=True)
class LearningConfig(_Section):
    SECTION: ClassVar[str] = "learning"
    task: str = "fmnist"
    model: str = "mlp"
    """A built-in model, or a module plug-in ``package.module:function[:key=value,...]``."""
    data: str | None = None
    """A data plug-in ``package.module:function[:key=value,...]`` or ``npz:path=FILE``;
    replaces ``task``."""
    data_path: Path | None = None
    """The directory of IDX files (mnist; overrides fmnist's)."""
    loss: str = "cross_entropy"
    metric: str = "accuracy"
    optimizer: str = "sgd"
    partition: str = "iid"
    peers: int | None = None
    """Partitions the data is split into; default the topology's size."""
    partition_index: int | None = None
    """This peer's partition; default its topology node index."""
    local_steps: int = LOCAL_STEPS
    batch_size: int = BATCH_SIZE
    lr: float = LEARNING_RATE
    seed: int = 0
    threads: int = 0
    """torch's intra-op threads in this peer's process; 0: torch's default (one per core)."""
    eval_every: int = 10
    """Rounds between evaluations on the held-out set; the last round is always evaluated."""

    def __post_init__(self) -> None:
        self._spec("task", check_task)
        self._spec("model", _check_model)
        self._spec("partition", check_partition_spec)
        if self.data is not None:
            try:
                data_ref(self.data)
            except ConfigError as exc:
                fail(
                    "learning.data",
                    self.data,
                    "a data plug-in 'package.module:function[:key=value,...]' or "
                    f"'npz:path=FILE' (the directory of IDX files is learning.data_path): {exc}",
                )
        for name in ("loss", "metric"):
            value = getattr(self, name)
            ok = value in (LOSSES if name == "loss" else METRICS) or is_plugin(value)
            self._require(ok, name, "a built-in name or 'package.module:function'")
        self._spec("optimizer")
        self._require(self.peers is None or self.peers >= 1, "peers", "an int >= 1")
        if self.partition_index is not None:
            bound = "an int >= 0" if self.peers is None else f"0 to {self.peers - 1}"
            index, peers = self.partition_index, self.peers
            self._require(index >= 0 and (peers is None or index < peers), "partition_index", bound)
        self._require(self.local_steps >= 1, "local_steps", "an int >= 1")
        self._require(self.batch_size >= 1, "batch_size", "an int >= 1")
        self._positive("lr")
        self._require(self.seed >= 0, "seed", "an int >= 0")
        self._require(self.threads >= 0, "threads", "an int >= 0 (0: torch's default)")
        self._require(self.eval_every >= 1, "eval_every", "an int >= 1 (rounds)")


@dataclass(frozen=True, kw_only=True)
class GossipConfig(_Section):
    SECTION: ClassVar[str] = "gossip"
    mode: Literal["sync", "async"] = "sync"
    round_timeout_s: float = 10.0
    staleness_bound: int = 5
    codec: str = "raw"
    gamma: float | None = None
    """CHOCO consensus step size; None: the codec's default."""
    aggregator: str = "mean"
    """How neighbours' copies are combined: mean, clip[:tau=T|b=B,fade=false],
    trimmed_mean:b=B, median."""
    keyframe_interval: int = 10
    rounds: int | None = None
    """Rounds to run; None: until stopped."""
    silence_timeout_s: float = 30.0
    """A neighbour silent this long counts as gone, presence notwithstanding."""
    startup_grace_s: float = 30.0
    """A neighbour never heard from is waited for this long after the peer starts, then not."""

    def __post_init__(self) -> None:
        self._positive("round_timeout_s", "silence_timeout_s")
        self._require(self.startup_grace_s >= 0, "startup_grace_s", "a number >= 0")
        self._require(self.staleness_bound >= 0, "staleness_bound", "an int >= 0")
        self._spec("codec", check_codec_spec)
        self._spec("aggregator", check_aggregator_spec)
        if self.gamma is not None:
            self._require(0 < self.gamma <= 1, "gamma", "a number in (0, 1]")
        self._require(self.keyframe_interval >= 1, "keyframe_interval", "an int >= 1")
        self._require(self.rounds is None or self.rounds >= 1, "rounds", "an int >= 1")


@dataclass(frozen=True, kw_only=True)
class StorageConfig(_Section):
    SECTION: ClassVar[str] = "storage"
    checkpoint_dir: Path | None = None
    """None: no checkpoints (a restarted peer starts at round 0)."""
    checkpoint_every: int = 5

    def __post_init__(self) -> None:
        self._require(self.checkpoint_every >= 1, "checkpoint_every", "an int >= 1 (rounds)")


@dataclass(frozen=True, kw_only=True)
class LimitsConfig(_Section):
    SECTION: ClassVar[str] = "limits"
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest whole (reassembled) message accepted from the network."""
    max_abs_value: float = 1e6
    """Largest magnitude of a received model entry, and of a model worth a checkpoint."""

    def __post_init__(self) -> None:
        self._require(self.max_message_bytes >= 1024, "max_message_bytes", "an int >= 1024")
        self._positive("max_abs_value")


@dataclass(frozen=True, kw_only=True)
class LoggingConfig(_Section):
    SECTION: ClassVar[str] = "logging"
    level: LogLevel = "INFO"
    file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class PeerConfig:
    """The whole of ``peer.toml``."""

    identity: IdentityConfig
    topology: TopologyConfig
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    availability: AvailabilityConfig = field(default_factory=AvailabilityConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def __post_init__(self) -> None:
        """This peer's share of the data: ``learning.partition_index`` of ``learning.peers``."""
        learning, topology = self.learning, self.topology
        if topology.membership:
            # The live set changes and ids are arbitrary: nothing to derive the share from.
            for name in ("peers", "partition_index"):
                if getattr(learning, name) is None:
                    raise ConfigError(
                        f"learning.{name}: required with topology.membership = true (this peer's "
                        "data share is partition_index of peers partitions, which the live set "
                        "cannot give); set peers to the swarm's planned size"
                    )
        elif topology.size is not None:  # a family; a graph file's size is known on loading it
            peers = topology.size if learning.peers is None else learning.peers
            index = topology.node if learning.partition_index is None else learning.partition_index
            assert isinstance(index, int)
            if index >= peers and learning.partition_index is not None:
                whence = "" if learning.peers is not None else ", from topology.size"
                fail(
                    "learning.partition_index",
                    index,
                    f"0 to {peers - 1} (one of learning.peers = {peers} partitions{whence})",
                )
            if index >= peers:
                fail(
                    "learning.peers",
                    peers,
                    f"> topology.node = {index} (the default learning.partition_index), "
                    "or set learning.partition_index",
                )
