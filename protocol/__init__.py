"""rumor's wire contract (v1) and the gossip maths both engines share, as pure functions."""

from protocol.codecs.base import Codec
from protocol.errors import ConfigError, ProtocolError, RumorError
from protocol.spec import Spec, parse_spec
from protocol.types import PeerId, Vector

__all__ = [
    "Codec",
    "ConfigError",
    "PeerId",
    "ProtocolError",
    "RumorError",
    "Spec",
    "Vector",
    "parse_spec",
]
