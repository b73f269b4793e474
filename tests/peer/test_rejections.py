"""The rejection log under a flood: bounded lines, a bounded number of them, every one counted."""

from __future__ import annotations

import logging

import pytest

from peer.runtime import inbound as inbound_module
from peer.runtime.rejections import (
    LINES_PER_REASON,
    MAX_DETAIL_CHARS,
    MAX_SENDER_CHARS,
    Rejections,
)
from peer.transport import Message
from protocol.topics import topic
from tests.peer.test_inbound import _inbound

LOGGERS = ("peer.runtime.rejections", "peer.runtime.inbound")


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name in LOGGERS]


def test_forged_senders_cannot_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Senders are topic levels: a thousand invented ones used to give a thousand lines."""
    caplog.set_level(logging.INFO)
    rejections = Rejections(interval_s=10.0)
    for i in range(1000):
        rejections.record(f"ghost{i}", "malformed_message", "junk", now=i * 0.001)
        rejections.record(f"ghost{i}", "unknown_sender", "not ours", now=i * 0.001)
    assert rejections.counts == {"malformed_message": 1000, "unknown_sender": 1000}
    assert len(_lines(caplog)) == 2 * LINES_PER_REASON  # the budget is per reason
    caplog.clear()
    assert rejections.record("ghost-late", "malformed_message", "junk", now=10.5)
    (line,) = _lines(caplog)
    held = 1000 - LINES_PER_REASON
    assert f"(and {held} more malformed_message held back since the last report)" in line.message


def test_a_line_stays_one_bounded_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    inbound = _inbound()
    forged = "rumor/s/key/" + "evil\nCRITICAL fake line " * 2000
    inbound.handle(Message(topic=forged, payload=b"x"))
    Rejections().record("p1", "malformed_message", "junk\r\n" * 5000)
    assert inbound.rejections.counts["malformed_message"] == 1
    lines = _lines(caplog)
    assert len(lines) == 2
    for line in lines:
        text = line.getMessage()
        assert not {"\n", "\r"} & set(text), text[:200]
        assert len(text) < MAX_SENDER_CHARS + MAX_DETAIL_CHARS + 200, len(text)


def test_a_message_that_trips_a_bug_is_counted_and_its_traceback_rate_limited(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(inbound_module, "accept", broken)
    caplog.set_level(logging.INFO)
    inbound = _inbound()
    for _ in range(50):
        inbound.handle(Message(topic=topic("key", swarm="s", peer="p1"), payload=b"x"))
    assert inbound.rejections.counts == {"internal_error": 50}
    tracebacks = [r for r in _lines(caplog) if r.exc_info is not None]
    assert len(tracebacks) == 1
    assert len(_lines(caplog)) == 2  # the rejection's line, then its traceback
