"""``rumor watch``: the swarm view folds telemetry and presence, and ignores hostile input."""

from __future__ import annotations

import json
import socket

import pytest

from peer import cli
from peer.watch import MAX_ROWS, SwarmView, parse_address, watch_settings
from protocol.errors import ConfigError
from protocol.presence import encode_presence
from protocol.signing import SigningKey


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


def test_rows_are_in_node_order_not_string_order() -> None:
    view = SwarmView(prefix="rumor", swarm="lab")
    for name in ("p10", "p2", "p1", "gateway"):
        view.update(f"rumor/lab/presence/{name}", b"online")
    assert list(view.rows()) == ["gateway", "p1", "p2", "p10"]


def test_watch_once_of_an_unreachable_broker_fails_naming_it(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["watch", "--broker", f"127.0.0.1:{port}", "--swarm", "lab", "--once"]
    status = cli.main([*argv, "--connect-timeout", "0.5"])
    assert status == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"broker 127.0.0.1:{port} not reachable within 0.5 s"]
    assert capsys.readouterr().out == ""  # no empty table that looks like an empty swarm


def test_watch_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["watch", "--help"])
    assert "rumor watch --broker 127.0.0.1:1883 --swarm local" in capsys.readouterr().out


def test_deeply_nested_telemetry_is_ignored_not_fatal() -> None:
    view = SwarmView(prefix="rumor", swarm="lab")
    nested = b"[" * 5000 + b"]" * 5000
    assert view.update("rumor/lab/telemetry/p1", b'{"a": ' + nested + b"}") is None
    assert view.update("rumor/lab/telemetry/p1", nested) is None
    assert view.update("rumor/lab/telemetry/p1", b'{"round": 2, "deep": {"x": [1]}}') == "p1"
    assert "deep" not in view.rows()["p1"], "only flat scalar fields are kept"


def test_a_huge_integer_counter_is_dropped_not_fatal() -> None:
    view = SwarmView(prefix="rumor", swarm="lab")
    huge = b"9" * 400  # too large for a float: the table's MB cell used to raise OverflowError
    assert view.update("rumor/lab/telemetry/p1", b'{"round": 2, "bytes_out": ' + huge + b"}")
    assert "bytes_out" not in view.rows()["p1"]
    assert "p1" in view.table()


def test_a_flood_of_invented_peer_ids_is_bounded() -> None:
    view = SwarmView(prefix="rumor", swarm="lab")
    for i in range(MAX_ROWS + 500):
        view.update(f"rumor/lab/telemetry/fake{i}", b'{"round": 1}')
    assert len(view.rows()) == MAX_ROWS
    assert view.ignored == 500


def test_a_view_of_known_peers_ignores_everyone_else() -> None:
    view = SwarmView(prefix="rumor", swarm="lab", peers=frozenset({"p0", "p1"}))
    assert view.update("rumor/lab/telemetry/evil", b'{"round": 99, "accuracy": 1.0}') is None
    assert view.update("rumor/lab/telemetry/p1", b'{"round": 3}') == "p1"
    assert list(view.rows()) == ["p1"]


def test_signed_presence_is_shown() -> None:
    key = SigningKey.from_seed(bytes(32))
    view = SwarmView(prefix="rumor", swarm="lab")
    data = encode_presence(swarm="lab", sender="p1", online=False, epoch=3, key=key)
    assert view.update("rumor/lab/presence/p1", data) == "p1"
    assert view.rows()["p1"]["state"] == "offline"


def test_a_watcher_holds_a_round_of_every_peer_it_shows() -> None:
    # A watcher hears every peer's telemetry and presence, not a peer's few neighbours: with a
    # peer's queue of 256 it dropped messages of 8 peers on a busy 2-core machine.
    settings = watch_settings("127.0.0.1", 1883, None)
    assert settings.max_queued >= 2 * MAX_ROWS
    assert settings.client_id.startswith("rumor-watch-")
    assert settings.client_id != watch_settings("127.0.0.1", 1883, None).client_id
