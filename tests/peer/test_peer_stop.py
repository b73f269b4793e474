"""``rumor peer`` stopped during start-up: at once, while waiting for the broker, while waiting for
its neighbours. Each must exit 0 with no traceback, saying offline if it was connected. These
spawn real ``python -m peer`` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import aiomqtt
import pytest

from peer.broker import Broker
from peer.up.procs import PeerProcess, launch

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "peer.toml"
    path.write_text(
        '[identity]\npeer = "p1"\nswarm = "s"\n'
        f"[broker]\nport = {port}\nconnect_timeout_s = 300.0\nreconnect_cap_s = 1.0\n"
        '[topology]\nfamily = "ring"\nsize = 3\nnode = 1\n'
        '[learning]\ntask = "consensus"\n'
        "[gossip]\nrounds = 1000\nround_timeout_s = 300.0\nsilence_timeout_s = 300.0\n"
        f'[storage]\ncheckpoint_dir = "{tmp_path / "checkpoints"}"\n'
    )
    return path


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_log(peer: PeerProcess, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in peer.log.read_text():
        assert peer.running, f"{peer.name} exited early: {peer.log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {text!r} in the log: {peer.log.read_text()}"
        time.sleep(0.05)


def _assert_clean_exit(peer: PeerProcess) -> None:
    status = peer.process.wait(timeout=120)
    log = peer.log.read_text()
    assert status == 0, log[-3000:]
    assert "Traceback" not in log
    assert "SIGTERM received" in log
    assert "stopped cleanly" in log


def test_a_peer_stopped_the_moment_it_is_spawned_exits_0(tmp_path: Path) -> None:
    # launch() is how rumor up starts peers: with SIGTERM blocked across the exec, so that a
    # stop sent before the interpreter runs waits for the peer's handlers (peer.stopping).
    peer = launch("p1", _config(tmp_path, _unused_port()), tmp_path)
    os.kill(peer.process.pid, signal.SIGTERM)
    _assert_clean_exit(peer)


def test_a_peer_stopped_while_waiting_for_the_broker_exits_0(tmp_path: Path) -> None:
    peer = launch("p1", _config(tmp_path, _unused_port()), tmp_path)
    try:
        _wait_log(peer, "connecting to 127.0.0.1")
        os.kill(peer.process.pid, signal.SIGTERM)
        _assert_clean_exit(peer)
    finally:
        peer.process.kill()
        peer.process.wait()


async def test_a_peer_stopped_while_waiting_for_its_neighbours_exits_0_and_says_offline(
    broker: Broker, tmp_path: Path
) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for neighbour in ("p0", "p2"):  # announced, but they never send a frame
            await client.publish(f"rumor/s/presence/{neighbour}", b"online", qos=1, retain=True)
        await client.subscribe("rumor/s/presence/p1", qos=1)
        peer = launch("p1", _config(tmp_path, broker.port), tmp_path)
        try:
            async with asyncio.timeout(120):
                async for message in client.messages:
                    if message.payload == b"online":
                        break
            os.kill(peer.process.pid, signal.SIGTERM)
            await asyncio.to_thread(_assert_clean_exit, peer)
            async with asyncio.timeout(30):
                async for message in client.messages:
                    if message.payload == b"offline":
                        break
        finally:
            peer.process.kill()
            peer.process.wait()
    assert "timed out waiting" not in peer.log.read_text()
