"""MQTT topic names of the v1 wire contract: ``{prefix}/{swarm}/{kind}/{peer}``.

===========  ===================================  ==========================
kind         content                              QoS / retained
===========  ===================================  ==========================
``key``      keyframe envelope (or its chunks)    1 / retained
``delta``    delta envelope (or its chunks)       1 / not retained
``presence`` ``online`` / ``offline`` (the will)  1 / retained
``telemetry`` per-round stats as JSON             0 / not retained
===========  ===================================  ==========================

Prefix, swarm and peer names are single topic levels. :func:`check_id` refuses, with a
:class:`ConfigError`, the names a peer must not configure; :func:`parse_topic` refuses, with a
:class:`MalformedMessage`, topics from the network that do not follow the contract.

>>> topic("key", prefix="rumor", swarm="lab", peer="pi-07")
'rumor/lab/key/pi-07'
>>> parse_topic("rumor/lab/delta/pi-07")
('delta', 'lab', 'pi-07')
>>> subscription("delta", prefix="rumor", swarm="lab")
'rumor/lab/delta/+'
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

from protocol.errors import ConfigError, MalformedMessage
from protocol.types import PeerId

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_ID_BYTES",
    "QOS",
    "RETAINED",
    "TopicKind",
    "check_id",
    "id_problem",
    "parse_topic",
    "peer_name",
    "subscription",
    "topic",
]

TopicKind: TypeAlias = Literal["key", "delta", "presence", "telemetry"]
_KINDS: Final[tuple[str, ...]] = get_args(TopicKind)

DEFAULT_PREFIX: Final = "rumor"
MAX_ID_BYTES: Final = 64
"""Longest prefix, swarm or peer name, in UTF-8 bytes; keeps topics and envelopes small."""

QOS: Final[dict[TopicKind, int]] = {"key": 1, "delta": 1, "presence": 1, "telemetry": 0}
RETAINED: Final[dict[TopicKind, bool]] = {
    "key": True,
    "delta": False,
    "presence": True,
    "telemetry": False,
}


def peer_name(node: int) -> PeerId:
    """The peer id of node ``node`` of a generated swarm (``rumor up``, the simulator): ``p{node}``.

    Unpadded, so that a node's name does not depend on the swarm's size, and the simulator's
    traffic figures (which count the sender's name in every envelope) match the daemons' bytes.

    >>> peer_name(3), peer_name(12)
    ('p3', 'p12')
    """
    if node < 0:
        raise ValueError(f"node index {node}: expected >= 0")
    return f"p{node}"


# '/' separates levels, '+' and '#' are MQTT wildcards, NUL is forbidden by MQTT, and a leading
# '$' is reserved for broker topics such as $SYS. Other control characters only cause trouble in
# logs and file names, so they are refused too.
_FORBIDDEN: Final = frozenset("/+#") | frozenset(map(chr, range(0x20))) | {"\x7f"}


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a prefix, swarm or peer name, or None if it can.

    >>> id_problem("pi-07") is None
    True
    >>> id_problem("a/b")
    "contains '/'; expected no '/', '+', '#' or control characters"
    """
    if not isinstance(value, str):
        return f"is a {type(value).__name__}; expected a string"
    if not value:
        return "is empty; expected 1 to 64 UTF-8 bytes"
    bad = next((c for c in value if c in _FORBIDDEN), None)
    if bad is not None:
        return f"contains {bad!r}; expected no '/', '+', '#' or control characters"
    if value.startswith("$"):
        return "starts with '$', which MQTT reserves for broker topics"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8 (lone surrogate)"
    if size > MAX_ID_BYTES:
        return f"is {size} UTF-8 bytes long; expected at most {MAX_ID_BYTES}"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_id(value: str, *, what: str) -> str:
    """Return ``value`` if it is a valid name, else raise ConfigError naming ``what`` and why.

    >>> check_id("lab", what="swarm")
    'lab'
    >>> check_id("", what="swarm")
    Traceback (most recent call last):
    ...
    protocol.errors.ConfigError: swarm '' is empty; expected 1 to 64 UTF-8 bytes
    """
    problem = id_problem(value)
    if problem is not None:
        raise ConfigError(f"{what} {_short(value)} {problem}")
    return value


def _check_kind(kind: str) -> TopicKind:
    if kind not in _KINDS:
        raise ConfigError(f"topic kind {kind!r} unknown; expected one of {', '.join(_KINDS)}")
    return kind  # type: ignore[return-value]  # narrowed by the membership test above


def topic(kind: TopicKind, *, prefix: str = DEFAULT_PREFIX, swarm: str, peer: PeerId) -> str:
    """The topic on which ``peer`` publishes messages of ``kind``."""
    _check_kind(kind)
    check_id(prefix, what="prefix")
    check_id(swarm, what="swarm")
    check_id(peer, what="peer")
    return f"{prefix}/{swarm}/{kind}/{peer}"


def subscription(kind: TopicKind, *, prefix: str = DEFAULT_PREFIX, swarm: str) -> str:
    """A wildcard filter for ``kind`` from every peer of the swarm (presence, telemetry)."""
    _check_kind(kind)
    check_id(prefix, what="prefix")
    check_id(swarm, what="swarm")
    return f"{prefix}/{swarm}/{kind}/+"


def parse_topic(text: str, *, prefix: str = DEFAULT_PREFIX) -> tuple[TopicKind, str, PeerId]:
    """Split a received topic into (kind, swarm, peer); MalformedMessage if it is not ours.

    >>> parse_topic("rumor/lab/gossip/pi-07")
    Traceback (most recent call last):
    ...
    protocol.errors.MalformedMessage: topic 'rumor/lab/gossip/pi-07': kind 'gossip' unknown; \
expected one of key, delta, presence, telemetry
    """
    levels = text.split("/") if isinstance(text, str) else []
    if len(levels) != 4:
        raise MalformedMessage(
            f"topic {_short(text)} has {len(levels)} levels; expected prefix/swarm/kind/peer"
        )
    got_prefix, swarm, kind, peer = levels
    if got_prefix != prefix:
        raise MalformedMessage(f"topic {_short(text)}: prefix {got_prefix!r}; expected {prefix!r}")
    if kind not in _KINDS:
        raise MalformedMessage(
            f"topic {_short(text)}: kind {kind!r} unknown; expected one of {', '.join(_KINDS)}"
        )
    for what, value in (("swarm", swarm), ("peer", peer)):
        problem = id_problem(value)
        if problem is not None:
            raise MalformedMessage(f"topic {_short(text)}: {what} {_short(value)} {problem}")
    return kind, swarm, peer  # type: ignore[return-value]  # kind checked against _KINDS
