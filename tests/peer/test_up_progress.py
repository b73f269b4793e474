"""``rumor up``'s progress line: only its own peers count, and the watcher never dies silently."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import peer.up as up_module
from peer.up.procs import PeerProcess
from peer.up.settings import UpConfig
from peer.watch import SwarmView


def _up(tmp_path: Path) -> UpConfig:
    return UpConfig(
        peers=2,
        topology="ring",
        rounds=10,
        task="consensus",
        model="mlp",
        partition="iid",
        out=tmp_path,
    )


def test_progress_ignores_invented_peers_and_impossible_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        peers = [
            PeerProcess(
                name=f"p{i}", process=sleeper, config=tmp_path, stats=tmp_path, log=tmp_path
            )
            for i in range(2)
        ]
        view = SwarmView(prefix="rumor", swarm="local", peers=frozenset({"p0", "p1"}))
        view.update("rumor/local/telemetry/evil", b'{"round": 9, "accuracy": 1.0}')
        view.update("rumor/local/telemetry/p0", b'{"round": 3, "accuracy": 0.5}')
        view.update("rumor/local/telemetry/p1", b'{"round": 4, "accuracy": 7.0}')
        assert up_module._progress(view, _up(tmp_path), -1, peers) == 3
        assert capsys.readouterr().out.strip() == (
            "round 3/10 (fastest 4), 2 peers running mean accuracy 0.500"
        )
        view.update("rumor/local/telemetry/p0", b'{"round": 1000000}')
        assert up_module._progress(view, _up(tmp_path), 3, peers) == 3, "beyond --rounds"
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_the_progress_watcher_restarts_after_a_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    second = asyncio.Event()

    async def flaky(*_: object, **__: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RecursionError("maximum recursion depth exceeded")
        second.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(up_module, "watch_swarm", flaky)
    monkeypatch.setattr(up_module, "_POLL_S", 0.0)
    view = SwarmView(prefix="r", swarm="s")
    task = asyncio.create_task(up_module._watch(("127.0.0.1", 1, None), view))
    await asyncio.wait_for(second.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "progress watcher failed" in caplog.text
