"""A fleet from ``rumor init``, run for real: three ``rumor peer`` processes over Mosquitto, one
inside its availability window and two outside it, one serving ``[metrics]``.

The paused peers must stay connected and say ``paused`` (retained presence), train nothing and
cost the running peer no wait: it runs its rounds alone with no round timeout, although every
round would wait ``round_timeout_s`` (60 s here) for a neighbour believed alive. Its Prometheus
endpoint, scraped over HTTP while it runs, serves the counters it produced.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from peer.broker import Broker, free_port
from peer.checkpoint import CheckpointStore
from peer.cli import main
from peer.up.procs import PeerProcess, launch

pytestmark = pytest.mark.slow

ROUNDS = 400
"""More than the run needs: the running peer is stopped once the checks are done."""


def _hhmm(minute: int) -> str:
    minute %= 24 * 60
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _fleet(tmp_path: Path, broker: Broker, metrics_port: int) -> Path:
    now = datetime.datetime.now()
    m = now.hour * 60 + now.minute
    inside, outside = f"{_hhmm(m - 60)}-{_hhmm(m + 180)}", f"{_hhmm(m + 240)}-{_hhmm(m + 300)}"
    text = f"""
[swarm]
name = "fleet"
[broker]
host = "{broker.host}"
port = {broker.port}
[topology]
family = "ring"
[learning]
task = "synthetic"
model = "logreg"
threads = 1
[gossip]
rounds = {ROUNDS}
round_timeout_s = 60.0
startup_grace_s = 60.0
silence_timeout_s = 120.0
[storage]
checkpoint_dir = "state"
checkpoint_every = 5
[availability]
hours = "{outside}"
check_every_s = 0.5
[[devices]]
name = "day"
[devices.availability]
hours = "{inside}"
[devices.metrics]
port = {metrics_port}
[[devices]]
name = "night1"
[[devices]]
name = "night2"
"""
    (tmp_path / "fleet.toml").write_text(text)
    out = tmp_path / "fleet"
    assert main(["init", str(tmp_path / "fleet.toml"), "--out", str(out)]) == 0
    return out


async def _presence(broker: Broker, wanted: dict[str, bytes]) -> None:
    """Until each peer's retained presence is the wanted payload (fails after 120 s)."""
    seen: dict[str, bytes] = {}
    async with asyncio.timeout(120), aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe("rumor/fleet/presence/+")
        async for message in client.messages:
            seen[str(message.topic).rsplit("/", 1)[1]] = bytes(message.payload)
            if all(seen.get(peer) == payload for peer, payload in wanted.items()):
                return


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text: str = reply.read().decode()
        return text


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"no {name} in:\n{text}"
    return float(match[1])


async def _scrape_until(peer: PeerProcess, port: int, done: Callable[[str], bool]) -> str:
    """The endpoint's text once ``done`` says so (fails after 300 s, or if the peer exits)."""
    async with asyncio.timeout(300):
        while True:
            assert peer.running, peer.log.read_text()[-3000:]
            try:
                text = await asyncio.to_thread(_scrape, port)
            except OSError:  # not listening yet
                text = ""
            if text and done(text):
                return text
            await asyncio.sleep(0.2)  # an HTTP endpoint has no change event: poll


async def _scrape_after(peer: PeerProcess, port: int, rounds: int) -> str:
    """The endpoint's text once it reports at least ``rounds`` rounds."""
    return await _scrape_until(peer, port, lambda t: _sample(t, "rumor_rounds_total") >= rounds)


def _stop(peer: PeerProcess) -> None:
    if peer.running:
        os.killpg(peer.process.pid, signal.SIGTERM)
    assert peer.process.wait(timeout=120) == 0, peer.log.read_text()[-3000:]


async def test_paused_devices_neither_train_nor_stall_the_one_that_may(
    broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    out = _fleet(tmp_path, broker, port)
    folders = {name: out / "peers" / name for name in ("day", "night1", "night2")}
    peers: dict[str, PeerProcess] = {}
    try:
        for name in ("night1", "night2"):
            peers[name] = launch(name, folders[name] / "peer.toml", folders[name])
        await _presence(broker, {"night1": b"paused", "night2": b"paused"})
        peers["day"] = launch("day", folders["day"] / "peer.toml", folders["day"])
        text = await _scrape_after(peers["day"], port, 20)
        await _presence(broker, {"day": b"online", "night1": b"paused", "night2": b"paused"})
        _stop(peers["day"])
        for name in ("night1", "night2"):
            assert peers[name].running, f"{name} left while paused"
            _stop(peers[name])
    finally:
        for peer in peers.values():
            if peer.running:
                peer.process.kill()
                peer.process.wait()

    day = [json.loads(line) for line in peers["day"].stats.read_text().splitlines()]
    assert len(day) >= 20
    assert [s["round"] for s in day] == list(range(1, len(day) + 1))
    assert day[-1]["timeouts"] == 0, "the running peer waited for a paused one"
    assert {s["alive"] for s in day} == {0}
    assert {s["neighbours"] for s in day} == {2}
    assert all(s["train_loss"] is not None for s in day)

    for name in ("night1", "night2"):
        assert peers[name].stats.read_text() == "", f"{name} ran rounds while paused"
        log = peers[name].log.read_text()
        assert "starts paused: outside hours" in log
        assert "stopped cleanly" in log
        state = CheckpointStore(folders[name] / "state").load_latest()
        assert state is None or state.round == 0, f"{name} trained while paused"

    # The endpoint served what the swarm did: its rounds, its bytes, no neighbour alive.
    assert _sample(text, "rumor_rounds_total") >= 20
    assert _sample(text, "rumor_bytes_out_total") > 0
    assert _sample(text, "rumor_neighbours") == 2
    assert _sample(text, "rumor_neighbours_live") == 0
    assert _sample(text, "rumor_round_timeouts_total") == 0
    assert _sample(text, "rumor_paused") == 0
    assert _sample(text, "rumor_rss_bytes") > 50 * 2**20
    assert 'rumor_round_phase_seconds_total{peer="day",phase="train",swarm="fleet"}' in text
    assert 'rumor_metric{metric="accuracy",peer="day",swarm="fleet"}' in text


async def test_metrics_count_what_a_gossiping_pair_did(broker: Broker, tmp_path: Path) -> None:
    ports = {"left": free_port(), "right": free_port()}
    text = f"""
[swarm]
name = "fleet"
[broker]
host = "{broker.host}"
port = {broker.port}
[learning]
task = "synthetic"
model = "logreg"
threads = 1
[gossip]
rounds = {ROUNDS}
[storage]
checkpoint_dir = "state"
[[devices]]
name = "left"
[devices.metrics]
port = {ports["left"]}
[[devices]]
name = "right"
[devices.metrics]
port = {ports["right"]}
"""
    (tmp_path / "fleet.toml").write_text(text)
    out = tmp_path / "fleet"
    assert main(["init", str(tmp_path / "fleet.toml"), "--out", str(out)]) == 0
    peers = {n: launch(n, out / "peers" / n / "peer.toml", out / "peers" / n) for n in ports}
    try:
        await _scrape_after(peers["left"], ports["left"], 5)
        # Garbage on right's delta topic: left rejects it and counts it by reason.
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish("rumor/fleet/delta/right", b"\x81\xa1v\x02", qos=1)
        scraped = await _scrape_until(
            peers["left"],
            ports["left"],
            lambda t: "rumor_frames_rejected_total{" in t and _sample(t, "rumor_rounds_total") > 5,
        )
        for peer in peers.values():
            _stop(peer)
    finally:
        for peer in peers.values():
            if peer.running:
                peer.process.kill()
                peer.process.wait()
    assert _sample(scraped, "rumor_neighbours_live") == 1
    assert _sample(scraped, "rumor_neighbours_mixed") == 1
    assert _sample(scraped, "rumor_bytes_in_total") > 0
    assert _sample(scraped, "rumor_bytes_out_total") > 0
    assert _sample(scraped, "rumor_frames_rejected_total") >= 1
    assert "rumor_paused" not in scraped  # no [availability]: no pause metrics
