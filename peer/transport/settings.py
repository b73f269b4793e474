"""Connection settings of :class:`~peer.transport.mqtt.MqttTransport` (no aiomqtt import here)."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from peer.config import PeerConfig
from peer.transport.backoff import Backoff
from protocol.errors import ConfigError

__all__ = ["MqttProtocol", "MqttSettings", "settings_from_config"]

MqttProtocol: TypeAlias = Literal["3.1.1", "5"]

# A chunk needs room for its header inside the payload; below this, chunking is mostly header.
_MIN_PAYLOAD = 256


@dataclass(frozen=True, kw_only=True)
class MqttSettings:
    """Where and how to connect. ``password`` is the secret itself (read from its file already)."""

    client_id: str
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: MqttProtocol = "5"
    keepalive_s: int = 30
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    max_payload: int | None = None
    """Largest payload sent in one MQTT message; longer ones are chunked. None: never chunk."""
    max_message_bytes: int | None = None
    """Largest reassembled message accepted; None leaves the reassembler's default."""
    connect_timeout_s: float = 10.0
    publish_timeout_s: float = 10.0
    max_queued: int = 256
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ConfigError("client_id '' is empty; expected a non-empty MQTT client id")
        if not self.host:
            raise ConfigError("host '' is empty; expected a host name or address")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port={self.port}: expected 1 to 65535")
        if self.protocol not in ("3.1.1", "5"):
            raise ConfigError(f"protocol={self.protocol!r}: expected '3.1.1' or '5'")
        if not 1 <= self.keepalive_s <= 65535:
            raise ConfigError(f"keepalive_s={self.keepalive_s}: expected 1 to 65535 seconds")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key: expected both or neither")
        if self.password is not None and self.username is None:
            raise ConfigError("password given without username; expected a username too")
        if self.max_payload is not None and self.max_payload < _MIN_PAYLOAD:
            raise ConfigError(f"max_payload={self.max_payload}: expected at least {_MIN_PAYLOAD}")
        for name in ("connect_timeout_s", "publish_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}={value}: expected a finite number of seconds > 0")
        if self.max_queued < 1:
            raise ConfigError(f"max_queued={self.max_queued}: expected at least 1")

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.tls_cert is not None


def settings_from_config(config: PeerConfig) -> MqttSettings:
    """The transport settings of a peer's config; reads the password file now, if any."""
    b, who = config.broker, config.identity
    return MqttSettings(
        # A random suffix: a fixed id would let anyone who connects with it kick this peer off
        # the broker (which then publishes its will, "offline", in its name).
        client_id=f"rumor-{who.swarm}-{who.peer}-{secrets.token_hex(4)}",
        host=b.host,
        port=b.port,
        protocol=b.protocol,
        keepalive_s=b.keepalive_s,
        tls_ca=b.tls_ca,
        tls_cert=b.tls_cert,
        tls_key=b.tls_key,
        username=b.username,
        password=b.read_password(),
        max_payload=b.max_payload,
        max_message_bytes=config.limits.max_message_bytes,
        connect_timeout_s=b.connect_timeout_s,
        backoff=Backoff(base_s=b.reconnect_base_s, cap_s=b.reconnect_cap_s),
    )
