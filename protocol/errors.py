"""The error tree of rumor, rooted in :class:`RumorError`.

Every package raises a subclass of ``RumorError``; third-party exceptions are converted where they
enter, with ``raise ... from exc``. Messages name the offending value and what was expected.

::

    RumorError
    ├── ConfigError                 bad config file, CLI argument or parameter (a ValueError)
    └── ProtocolError               a message from the network is unusable; the peer drops it
        ├── MalformedMessage        not a v1 envelope, or a field has the wrong type
        │   └── TruncatedMessage    the bytes end before the structure does
        ├── OversizedMessage        larger than the configured limit
        ├── VersionMismatch         envelope version this peer does not speak
        ├── WrongSwarm              envelope names another swarm
        ├── UnknownSender           sender is not an expected in-neighbour, or not trusted
        ├── Unsigned                signatures are required and the message has none
        ├── BadSignature            the signature does not verify with the sender's trusted key
        ├── FingerprintMismatch     model fingerprint differs from ours
        ├── UnknownCodec            codec name or parameters not supported
        ├── InconsistentLength      payload length disagrees with the codec and parameter count
        ├── NonFiniteValues         decoded values contain NaN or infinity
        ├── OutOfRange              decoded values exceed the receiver's magnitude bound
        ├── ReplayedMessage         seq is not newer than the last one accepted from this sender
        ├── UnknownBase             delta applies to a frame the receiver does not hold
        └── BadChunk                chunk header inconsistent, or chunk set incomplete or expired

Other packages extend the tree from ``RumorError`` (``TopologyError``, ``DataError``, ...).
"""

from __future__ import annotations

__all__ = [
    "BadChunk",
    "BadSignature",
    "ConfigError",
    "FingerprintMismatch",
    "InconsistentLength",
    "MalformedMessage",
    "NonFiniteValues",
    "OutOfRange",
    "OversizedMessage",
    "ProtocolError",
    "ReplayedMessage",
    "RumorError",
    "TruncatedMessage",
    "UnknownBase",
    "UnknownCodec",
    "UnknownSender",
    "Unsigned",
    "VersionMismatch",
    "WrongSwarm",
]


class RumorError(Exception):
    """Base of every error rumor raises on purpose."""


class ConfigError(RumorError, ValueError):
    """A configuration value, CLI argument or function parameter is invalid."""


class ProtocolError(RumorError):
    """A received message cannot be used. The runtime counts it, logs it and drops it.

    ``reason`` is a short stable identifier (the snake_case class name) for per-reason counters.
    """

    @property
    def reason(self) -> str:
        name = type(self).__name__
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class MalformedMessage(ProtocolError):
    """The bytes are not a v1 envelope, or a field has the wrong type."""


class TruncatedMessage(MalformedMessage):
    """The bytes end before the structure they encode does."""


class OversizedMessage(ProtocolError):
    """The message is larger than the configured limit."""


class VersionMismatch(ProtocolError):
    """The envelope's version is not one this peer speaks."""


class WrongSwarm(ProtocolError):
    """The envelope names a different swarm."""


class UnknownSender(ProtocolError):
    """The sender is not an expected in-neighbour, or (signed) not in the trust list."""


class Unsigned(ProtocolError):
    """Signatures are required and the message carries none."""


class BadSignature(ProtocolError):
    """The signature is misplaced or does not verify with the sender's trusted key."""


class FingerprintMismatch(ProtocolError):
    """The sender's model fingerprint differs from the receiver's."""


class UnknownCodec(ProtocolError):
    """The codec name or its parameters are not supported."""


class InconsistentLength(ProtocolError):
    """A length in the message disagrees with the codec, the parameter count or another field."""


class NonFiniteValues(ProtocolError):
    """The decoded values contain NaN or infinity."""


class OutOfRange(ProtocolError):
    """The decoded values are finite but larger in magnitude than the receiver accepts."""


class ReplayedMessage(ProtocolError):
    """The sequence number is not newer than the last one accepted from this sender."""


class UnknownBase(ProtocolError):
    """A delta applies to a frame the receiver does not hold; wait for the next keyframe."""


class BadChunk(ProtocolError):
    """A chunk header is inconsistent, or its set is incomplete or expired."""
