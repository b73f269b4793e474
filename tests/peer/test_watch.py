"""``rumor watch``: the swarm view folds telemetry and presence, and ignores hostile input."""

from __future__ import annotations

import json

import pytest

from peer.watch import SwarmView, parse_address
from protocol.errors import ConfigError


def test_view_keeps_the_latest_row_per_peer() -> None:
    view = SwarmView(prefix="rumor", swarm="lab")
    view.update("rumor/lab/telemetry/p0", json.dumps({"round": 1, "accuracy": 0.2}).encode())
    view.update("rumor/lab/telemetry/p0", json.dumps({"round": 2, "accuracy": 0.4}).encode())
    view.update("rumor/lab/presence/p1", b"online")
    rows = view.rows()
    assert rows["p0"]["round"] == 2
    assert rows["p0"]["state"] == "online"
    assert rows["p1"]["state"] == "online"
    assert "p0" in view.table().splitlines()[1]


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("rumor/lab/telemetry/p0", b"\xff not json"),
        ("rumor/lab/telemetry/p0", b"[1, 2]"),
        ("rumor/lab/telemetry/p0", b"{" + b" " * 70_000 + b"}"),
        ("rumor/other/telemetry/p0", b"{}"),
        ("rumor/lab/presence/p0", b"maybe"),
        ("not/a/rumor/topic/at/all", b"{}"),
    ],
)
def test_view_ignores_what_it_cannot_use(topic: str, payload: bytes) -> None:
    view = SwarmView(prefix="rumor", swarm="lab")
    assert view.update(topic, payload) is None
    assert view.rows().get("p0", {}).get("round") is None


def test_parse_address_rejects_a_bad_port() -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address("localhost:99999")
