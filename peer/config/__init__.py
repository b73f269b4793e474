"""``rumor peer --config peer.toml``: the daemon's configuration, validated on load.

>>> config = config_from_dict(
...     {"identity": {"peer": "pi-7"}, "topology": {"family": "ring", "size": 8, "node": 7}}
... )
>>> config.gossip.mode, config.broker.port
('sync', 1883)
>>> apply_overrides(config, ["gossip.rounds=50"]).gossip.rounds
50
>>> apply_overrides(config, ["gossip.round_timeout_s=-1"])
Traceback (most recent call last):
...
protocol.errors.ConfigError: gossip.round_timeout_s = -1.0: expected a finite number > 0
"""

from peer.config.fleet import AvailabilityConfig, MetricsConfig
from peer.config.loader import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    to_toml,
)
from peer.config.sections import (
    BrokerConfig,
    GossipConfig,
    IdentityConfig,
    LearningConfig,
    LimitsConfig,
    LoggingConfig,
    LogLevel,
    PeerConfig,
    StorageConfig,
    TopologyConfig,
)
from peer.config.security import SecurityConfig

__all__ = [
    "AvailabilityConfig",
    "BrokerConfig",
    "GossipConfig",
    "IdentityConfig",
    "LearningConfig",
    "LimitsConfig",
    "LogLevel",
    "LoggingConfig",
    "MetricsConfig",
    "PeerConfig",
    "SecurityConfig",
    "StorageConfig",
    "TopologyConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "to_toml",
]
