"""MQTT topic filters: ``+`` matches one level, ``#`` the rest (including the parent level).

>>> matches("rumor/lab/key/+", "rumor/lab/key/pi-07")
True
>>> matches("rumor/lab/#", "rumor/lab")
True
>>> matches("rumor/+/key/+", "rumor/lab/delta/pi-07")
False
>>> matches("#", "$SYS/broker/uptime")
False
"""

from __future__ import annotations

from protocol.errors import ConfigError

__all__ = ["check_filter", "check_topic", "matches"]


def check_topic(topic: str) -> str:
    """Return ``topic`` if a message may be published on it (no wildcards, not empty)."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ConfigError(f"topic {topic!r}: expected a non-empty name without '+', '#' or NUL")
    return topic


def check_filter(pattern: str) -> str:
    """Return ``pattern`` if it is a valid subscription filter.

    >>> check_filter("a/#/b")
    Traceback (most recent call last):
    ...
    protocol.errors.ConfigError: filter 'a/#/b': '#' must be the whole last level
    """
    if not pattern or "\x00" in pattern:
        raise ConfigError(f"filter {pattern!r}: expected a non-empty filter without NUL")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ConfigError(f"filter {pattern!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ConfigError(f"filter {pattern!r}: '+' must be a whole level")
    return pattern


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the subscription filter ``pattern`` (MQTT 3.1.1 section 4.7)."""
    # Wildcards in the first level never match topics of the broker ($SYS/...).
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    want, have = pattern.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)
