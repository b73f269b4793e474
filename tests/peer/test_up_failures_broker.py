"""``rumor up`` with failures, for real: peer processes SIGKILLed and restarted, frames lost,
the broker stopped and started, all through a real Mosquitto; nothing outlives the command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from peer.broker import Broker
from peer.cli import main
from peer.runtime import RoundStats
from tests.peer.runtime_helpers import drive, mqtt_peer, peer_config
from tests.peer.up_helpers import processes_mentioning

pytestmark = [pytest.mark.broker, pytest.mark.slow]

_SMALL = ["--task", "synthetic", "--model", "logreg", "--local-steps", "5", "--batch-size", "16"]


def _rounds(stats: Path) -> list[int]:
    return [json.loads(line)["round"] for line in stats.read_text().splitlines()]


def _last(path: Path) -> dict[str, object]:
    last = json.loads(path.read_text().splitlines()[-1])
    assert isinstance(last, dict)
    return last


def test_a_crash_and_lossy_links_on_real_peers_follow_the_simulators_schedule(
    tmp_path: Path,
) -> None:
    run, sim = tmp_path / "up", tmp_path / "sim"
    flags = ["--peers", "4", "--rounds", "8", *_SMALL, "--crash", "1@2-5", "--drop", "0.3"]
    assert main(["up", *flags, "--eval-every", "4", "--round-timeout", "5", "--out", str(run)]) == 0
    assert processes_mentioning(str(run)) == [], "rumor up left something running"
    record = json.loads((run / "failures.json").read_text())
    events = [(e["event"], e.get("peer"), e.get("round")) for e in record["events"]]
    assert events == [("crash", "p1", 2), ("restart", "p1", 5), ("gate_open", None, 5)]
    assert record["sim_flags"] == ["--drop", "0.3", "--crash", "1@2-5"]
    # p1 did rounds 0 and 1, was down for 2..4 and came back for 5..7, as in the simulator
    assert _rounds(run / "p1" / "stats.jsonl") == [1, 2, 6, 7, 8]
    for j in (0, 2, 3):
        assert _rounds(run / f"p{j}" / "stats.jsonl") == list(range(1, 9))
    summary = json.loads((run / "summary.json").read_text())
    assert [p["exit_status"] for p in summary["peers"]] == [0, 0, 0, 0]
    sim_flags = [f for f in flags if f not in ("--batch-size", "16")]
    sim_flags += ["--batch-size", "16"]
    assert main(["sim", *sim_flags, "--eval-every", "4", "--quiet", "--out", str(sim)]) == 0
    real, simulated = _last(run / "rounds.jsonl"), _last(sim / "rounds.jsonl")
    assert set(real) == set(simulated)
    rounds = [json.loads(line)["round"] for line in (run / "rounds.jsonl").read_text().splitlines()]
    assert rounds == [0, 4, 8]
    assert real["round"] == simulated["round"] == 8
    assert real["alive"] == simulated["alive"] == 4
    assert isinstance(real["acc_mean"], float)
    assert isinstance(simulated["acc_mean"], float)
    assert abs(real["acc_mean"] - simulated["acc_mean"]) < 0.03


def test_a_broker_outage_is_survived_by_every_peer(tmp_path: Path) -> None:
    run = tmp_path / "up"
    argv = ["up", "--peers", "3", "--task", "consensus", "--rounds", "10", "--out", str(run)]
    assert main([*argv, "--broker-outage", "3-5", "--round-timeout", "1"]) == 0
    assert processes_mentioning(str(run)) == [], "rumor up left something running"
    record = json.loads((run / "failures.json").read_text())
    events = [(e["event"], e["round"]) for e in record["events"]]
    assert events == [("broker_stop", 3), ("gate_open", 3), ("broker_start", 5), ("gate_open", 5)]
    summary = json.loads((run / "summary.json").read_text())
    for peer in summary["peers"]:
        assert peer["exit_status"] == 0
        assert peer["rounds"] == 10
        assert peer["publish_failed"] > 0, "the outage never reached the peers"


async def test_peers_keep_the_swarms_pace_while_the_broker_is_down(
    broker: Broker, tmp_path: Path
) -> None:
    """Mosquitto sends every peer's will as it shuts down, so each peer sees its neighbours go
    offline: without its own link it must still not race through its rounds alone."""
    rounds = 10
    gossip = {"round_timeout_s": 1.0, "silence_timeout_s": 10.0}
    configs = [
        peer_config(j, 3, rounds=rounds, gossip=gossip, broker={"port": broker.port})
        for j in range(3)
    ]
    peers = [mqtt_peer(c) for c in configs]
    done = [0, 0, 0]
    at_restart: list[int] = []
    down = asyncio.Event()

    def tracker(j: int) -> Callable[[RoundStats], Awaitable[None]]:
        async def on_round(stats: RoundStats) -> None:
            done[j] = stats.round
            if j == 0 and stats.round == 2:
                await asyncio.to_thread(broker.stop)
                down.set()
            if down.is_set() and not at_restart and min(done) >= 4:
                at_restart.extend(done)
                await asyncio.to_thread(broker.launch)
            if at_restart:  # the test's own pacing: every link back before the next round
                async with asyncio.timeout(60):
                    await peers[j][0].state.wait_up()

        return on_round

    results = await asyncio.gather(
        *(drive(t, r, on_round=tracker(j), meet=True) for j, (t, r) in enumerate(peers))
    )
    assert at_restart, "the broker never came back"
    assert max(at_restart) < rounds, f"peers raced through the outage alone: {at_restart}"
    for stats, _ in results:
        assert [s.round for s in stats] == list(range(1, rounds + 1))


def test_churn_and_stragglers_on_real_peers_end_where_the_simulator_ends(tmp_path: Path) -> None:
    """Every down period of the simulator's churn schedule, carried out by SIGKILL and restart
    (at times every peer is down at once), with its stragglers: the real peers end within a
    point of the simulator, and so does the spread of their models, the models of peers that
    stay down included (a restart is timed by the swarm, so a few frames can land a round
    apart from the simulator's)."""
    run, sim = tmp_path / "up", tmp_path / "sim"
    flags = ["--peers", "4", "--rounds", "16", "--task", "synthetic", "--model", "logreg"]
    flags += ["--churn", "up=6,down=3", "--stragglers", "0.25:steps=1", "--eval-every", "8"]
    assert main(["up", *flags, "--round-timeout", "5", "--out", str(run)]) == 0
    assert processes_mentioning(str(run)) == [], "rumor up left something running"
    record = json.loads((run / "failures.json").read_text())
    kinds = {e["event"] for e in record["events"]}
    assert {"crash", "restart", "gate_open"} <= kinds
    assert main(["sim", *flags, "--quiet", "--out", str(sim)]) == 0
    real, simulated = _last(run / "rounds.jsonl"), _last(sim / "rounds.jsonl")
    assert real["alive"] == simulated["alive"]
    assert isinstance(real["acc_mean"], float)
    assert isinstance(simulated["acc_mean"], float)
    assert real["acc_mean"] == pytest.approx(simulated["acc_mean"], abs=0.01)
    # a peer that stays down counts with the model it had when it went down (without that
    # model the distance was several times the simulator's)
    assert real["consensus_distance"] == pytest.approx(simulated["consensus_distance"], rel=0.25)
