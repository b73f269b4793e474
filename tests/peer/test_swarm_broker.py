"""Real peer processes over a real Mosquitto: ``rumor up``, kill -9 and restart, chunking, config
errors. These spawn ``python -m peer`` processes: they need the ``peer`` entry point installed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from peer.broker import Broker
from peer.checkpoint import CheckpointStore
from peer.cli import main
from peer.config import load_config, to_toml
from peer.runtime import load_learner
from peer.up.procs import PeerProcess, launch, stop_all
from peer.up.report import last_stats
from peer.up.settings import UpConfig, peer_configs
from tests.peer.up_helpers import processes_mentioning

pytestmark = [pytest.mark.broker, pytest.mark.slow]

_SMALL = ["--model", "mlp:hidden=16", "--local-steps", "5", "--batch-size", "16"]


def _final_params(run: Path, peers: int) -> torch.Tensor:
    rows = []
    for j in range(peers):
        state = CheckpointStore(run / f"p{j}" / "checkpoints").load_latest()
        assert state is not None
        rows.append(state.params)
    return torch.stack(rows)


def _spread(x: torch.Tensor) -> float:
    return float(((x - x.mean(0)) ** 2).sum(1).mean())


def test_six_peers_on_a_ring_learn(broker: Broker, tmp_path: Path) -> None:
    rounds = 6
    status = main(
        [
            "up",
            "--peers",
            "6",
            "--rounds",
            str(rounds),
            "--broker",
            broker.address,
            "--out",
            str(tmp_path),
            "--partition",
            "dirichlet:alpha=1.0",
            *_SMALL,
        ]
    )
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [p["peer"] for p in summary["peers"]] == [f"p{j}" for j in range(6)]
    for peer in summary["peers"]:
        assert peer["rounds"] == rounds
        assert peer["accuracy"] > 0.5, peer  # chance is 0.1
        assert peer["rejected"] == 0
        assert peer["bytes_sent"] > 0
    gossip = _final_params(tmp_path, 6)
    # The same peers training alone for as many rounds drift much further apart.
    alone = []
    for j in range(6):
        config = load_config(tmp_path / f"p{j}" / "peer.toml")
        learner = load_learner(config, index=j, peers=6)
        x = learner.start
        for r in range(rounds):
            x, _ = learner.train(x, r)
        alone.append(x)
    assert _spread(gossip) < 0.5 * _spread(torch.stack(alone))


def _wait_round(peer: PeerProcess, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = last_stats(peer.stats)
        done = stats.get("round")
        if isinstance(done, int) and done >= at_least:
            return
        assert peer.running, f"{peer.name} exited early: {peer.log.read_text()[-2000:]}"
        time.sleep(0.1)
    raise AssertionError(f"{peer.name} never reached round {at_least}")


def test_kill_two_peers_then_restart_one(broker: Broker, tmp_path: Path) -> None:
    up = UpConfig(
        peers=6,
        topology="ring",
        rounds=30,
        task="fmnist",
        model="logreg",
        partition="iid",
        out=tmp_path,
        local_steps=5,
        batch_size=16,
        round_timeout_s=3.0,
        overrides=("storage.checkpoint_every=2",),
    )
    peers: list[PeerProcess] = []
    try:
        for config in peer_configs(up, host=broker.host, port=broker.port):
            folder = tmp_path / config.identity.peer
            folder.mkdir()
            (folder / "peer.toml").write_text(to_toml(config))
            peers.append(launch(config.identity.peer, folder / "peer.toml", folder))
        _wait_round(peers[1], 5)
        for victim in (peers[1], peers[4]):
            os.kill(victim.process.pid, signal.SIGKILL)
            victim.process.wait()
        killed_at = last_stats(peers[1].stats)["round"]
        assert isinstance(killed_at, int)
        peers[1] = launch("p1", peers[1].config, peers[1].config.parent)
        for peer in peers:
            if peer.name != "p4":
                assert peer.process.wait(timeout=120) == 0, peer.log.read_text()[-3000:]
    finally:
        stop_all(peers, grace_s=5)
    lines = [json.loads(s) for s in (tmp_path / "p1" / "stats.jsonl").read_text().splitlines()]
    # The runtime checkpoints a round before the daemon writes its stats line: the kill may fall
    # in between, so the checkpoint can be one round past the last line.
    resumed = lines[0]["round"] - 1
    assert 2 <= resumed <= killed_at + 1, "p1 did not resume from its checkpoint"
    assert lines[-1]["round"] == 30
    for name in ("p0", "p2", "p3", "p5"):
        stats = last_stats(tmp_path / name / "stats.jsonl")
        assert stats["round"] == 30
    # p4 stayed dead: its neighbours dropped it from their mixing set. Each has exactly one other
    # neighbour (p2, p0), alive until it finishes at round 30; in a sync ring it is at most one
    # round ahead, so at round 25 it is alive and p4 is not. (At the last round the other
    # neighbour may already have said offline: 0 or 1 there, which is why the check is at 25.)
    for name in ("p3", "p5"):
        lines = (tmp_path / name / "stats.jsonl").read_text().splitlines()
        stats = next(s for s in map(json.loads, lines) if s["round"] == 25)
        assert stats["alive"] == 1, stats


def test_chunking_below_the_broker_packet_limit(tmp_path: Path) -> None:
    # logreg on Fashion-MNIST: 7,850 parameters, 31 kB frames; the broker takes 8 kB packets.
    status = main(
        [
            "up",
            "--peers",
            "3",
            "--rounds",
            "3",
            "--model",
            "logreg",
            "--max-packet-size",
            "8192",
            "--out",
            str(tmp_path),
            "--local-steps",
            "5",
            "--batch-size",
            "16",
        ]
    )
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for peer in summary["peers"]:
        assert peer["rounds"] == 3
        assert peer["rejected"] == 0
    log = (tmp_path / "p0" / "peer.log").read_text()
    assert "got 2" in log, "no frame came through whole"


def test_malformed_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "peer.toml"
    config.write_text(
        '[identity]\npeer = "a"\n[topology]\nmembership = true\n'
        '[gossip]\nround_timeout_s = "soon"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "peer", "peer", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "gossip.round_timeout_s" in done.stderr


def _start_up(run: Path) -> subprocess.Popen[bytes]:
    """``rumor up`` in its own session, as in a terminal of its own, once every peer has done a
    round (all three peers and the broker running)."""
    command = ["up", "--peers", "3", "--task", "consensus", "--rounds", "100000", "--out"]
    up = subprocess.Popen(
        [sys.executable, "-m", "peer", *command, str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        for j in range(3):
            stats = run / f"p{j}" / "stats.jsonl"
            while not (stats.exists() and isinstance(last_stats(stats).get("round"), int)):
                assert up.poll() is None, "rumor up exited early"
                assert time.monotonic() < deadline, f"p{j} never finished a round"
                time.sleep(0.1)
        assert len(processes_mentioning(str(run))) == 5, "rumor up, the broker and 3 peers"
    except BaseException:
        _end(up)
        raise
    return up


def _end(up: subprocess.Popen[bytes]) -> None:
    """After a failed test: SIGTERM (rumor up then stops what it started), SIGKILL if need be."""
    if up.poll() is None:
        up.terminate()
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def test_ctrl_c_on_rumor_up_stops_every_peer_cleanly_and_the_broker(tmp_path: Path) -> None:
    run = tmp_path / "run"
    up = _start_up(run)
    try:
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
        assert up.wait(timeout=60) == 130
    finally:
        _end(up)
    assert processes_mentioning(str(run)) == [], "something rumor up started is still running"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] is True
    for peer in summary["peers"]:
        assert peer["exit_status"] == 0, peer  # SIGTERM: finish the round, checkpoint, exit 0
        assert peer["rounds"] > 0
        assert "stopped cleanly" in Path(peer["log"]).read_text()
        assert CheckpointStore(Path(peer["log"]).parent / "checkpoints").load_latest() is not None


def test_a_second_sigterm_during_the_grace_period_leaves_nothing_running(tmp_path: Path) -> None:
    run = tmp_path / "run"
    up = _start_up(run)
    pids = processes_mentioning(str(run))
    stuck = processes_mentioning(str(run / "p0" / "peer.toml"))
    try:
        assert len(stuck) == 1
        os.kill(stuck[0], signal.SIGSTOP)  # p0 cannot finish its round: a long grace period
        up.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while "stopped cleanly" not in (run / "p1" / "peer.log").read_text():
            assert time.monotonic() < deadline, "p1 never got its SIGTERM"
            time.sleep(0.05)
        up.send_signal(signal.SIGTERM)  # impatient, while rumor up waits for p0
        assert up.wait(timeout=60) == 130
        assert processes_mentioning(str(run)) == [], "something rumor up started still runs"
        assert json.loads((run / "summary.json").read_text())["interrupted"] is True
    finally:
        _end(up)
        for pid in set(pids) & set(processes_mentioning(str(run))):
            os.kill(pid, signal.SIGKILL)  # what this test started, should rumor up not have


def test_rumor_up_trains_a_plugin_module_on_plugin_data(broker: Broker, tmp_path: Path) -> None:
    mods = "tests.peer.plugins.usermods"
    status = main(
        [
            "up",
            "--peers",
            "4",
            "--rounds",
            "6",
            "--broker",
            broker.address,
            "--out",
            str(tmp_path),
            "--data",
            f"{mods}:blobs",
            "--model",
            f"{mods}:bnnet:hidden=16",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--local-steps",
            "5",
            "--batch-size",
            "16",
        ]
    )
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metric"] == "accuracy"
    for peer in summary["peers"]:
        assert peer["rounds"] == 6
        assert peer["accuracy"] > 0.6, peer  # chance is 1/3
