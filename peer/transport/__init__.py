"""The Transport seam between the peer runtime and the broker, with MQTT and in-memory versions."""

from peer.transport.backoff import Backoff
from peer.transport.base import (
    OFFLINE,
    ONLINE,
    ConnectionState,
    Message,
    Presence,
    Transport,
    TransportStats,
)
from peer.transport.errors import NotConnectedError, TransportError
from peer.transport.memory import MemoryBroker, MemoryTransport
from peer.transport.mqtt import MqttTransport
from peer.transport.settings import MqttProtocol, MqttSettings, settings_from_config

__all__ = [
    "OFFLINE",
    "ONLINE",
    "Backoff",
    "ConnectionState",
    "MemoryBroker",
    "MemoryTransport",
    "Message",
    "MqttProtocol",
    "MqttSettings",
    "MqttTransport",
    "NotConnectedError",
    "Presence",
    "Transport",
    "TransportError",
    "TransportStats",
    "settings_from_config",
]
