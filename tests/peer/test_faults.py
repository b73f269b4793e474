"""The fault plan of ``rumor peer --faults``: its file, and what it does inside a runtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from peer import cli
from peer.config import to_toml
from peer.faults import FaultPlan, load_plan, plan_from_json, plan_to_json
from peer.faults.inject import Faults
from peer.faults.plan import GATE_OPEN, gate_path, hold_path
from peer.runtime import PeerRuntime, RoundStats, load_learner
from peer.runtime.neighbours import static_neighbourhood
from peer.transport import MemoryBroker, MemoryTransport, Presence
from protocol.errors import ConfigError
from protocol.failure_schedule import link_lost, partition_cut
from protocol.failures import PartitionWindow
from protocol.topics import topic
from tests.peer.runtime_helpers import drive, peer_config

PEERS, ROUNDS = 4, 6
INDEX = {f"p{j}": j for j in range(PEERS)}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1]", "expected a JSON object"),
        ("{", "not JSON"),
        ('{"seed": 0, "index": {"p0": 0}, "jitter": 1}', "unknown key(s) jitter"),
        ('{"seed": 0, "index": {"p0": "zero"}}', "index must map peer names to integers"),
        ('{"seed": 0, "index": {"p0": 0}, "drop": 1.5}', "drop probability"),
        ('{"seed": 0, "index": {"p0": 0}, "gates": [3]}', "need gate_dir"),
        ('{"seed": 0, "index": {"p0": 5}, "peers": 2}', "every index must lie in 0..1"),
        ('{"seed": 0, "index": {"p0": 0}, "hold_at": [-1]}', "hold_at must be a list"),
        ('{"seed": "x", "index": {"p0": 0}}', "seed must be an integer"),
    ],
)
def test_a_bad_plan_is_one_config_error_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="faults: ") as info:
        plan_from_json(text)
    assert fragment in str(info.value)


def test_rumor_peer_refuses_a_bad_fault_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "peer.toml"
    config.write_text(to_toml(peer_config(0, PEERS)))
    bad = tmp_path / "plan.json"
    bad.write_text('{"seed": 0}')
    with pytest.raises(SystemExit) as info:
        cli.main(["peer", "--config", str(config), "--faults", str(bad)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "plan.json" in err
    assert "index must map" in err
    assert len(err.splitlines()) == 1


def test_a_plan_survives_its_file(tmp_path: Path) -> None:
    plan = FaultPlan(
        seed=4,
        index=INDEX,
        peers=PEERS,
        drop=0.25,
        partition=PartitionWindow(start=2, end=5, fraction=0.25),
        hold_at=(3,),
        resume_at=7,
        gates=(7, 9),
        gate_dir=tmp_path,
        slow_ms=5.0,
    )
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    assert load_plan(tmp_path / "plan.json") == plan


async def _faulty_swarm(plan: FaultPlan) -> list[tuple[list[RoundStats], Faults]]:
    broker = MemoryBroker()
    runs = []
    for j in range(PEERS):
        config = peer_config(j, PEERS, rounds=ROUNDS)
        ident = config.identity
        presence = Presence(topic=topic("presence", swarm=ident.swarm, peer=ident.peer))
        transport = MemoryTransport(broker, client_id=ident.peer, presence=presence)
        hood = static_neighbourhood(config.topology, me=ident.peer)
        assert hood is not None
        learner = load_learner(config, index=j, peers=PEERS)
        faults = Faults(plan, me=ident.peer, prefix=ident.prefix, max_bytes=1 << 20)
        runtime = PeerRuntime(config, transport, learner, neighbourhood=hood, faults=faults)
        runs.append((transport, runtime, faults))

    # every neighbour heard first, so that round 0 is not run alone
    results = await asyncio.gather(*(drive(t, r, meet=True) for t, r, _ in runs))
    return [(s, f) for (s, _), (_, _, f) in zip(results, runs, strict=True)]


def _expected_losses(plan: FaultPlan, receiver: int) -> int:
    senders = [(receiver - 1) % PEERS, (receiver + 1) % PEERS]
    lost = 0
    for r in range(ROUNDS):
        src, dst = np.array(senders), np.array([receiver] * 2)
        drop = link_lost(plan.drop, src, dst, seed=plan.seed, round=r)
        cut = (
            partition_cut(plan.partition, PEERS, src, dst, round=r)
            if plan.partition
            else np.zeros(2, bool)
        )
        lost += int((drop | cut).sum())
    return lost


@pytest.mark.parametrize(
    "plan",
    [
        FaultPlan(seed=3, index=INDEX, peers=PEERS, drop=0.5),
        FaultPlan(seed=0, index=INDEX, peers=PEERS, partition=PartitionWindow(start=1, end=4)),
    ],
)
async def test_peers_lose_the_simulators_frames_and_never_wait_for_them(plan: FaultPlan) -> None:
    results = await _faulty_swarm(plan)
    for j, (stats, faults) in enumerate(results):
        assert [s.round for s in stats] == list(range(1, ROUNDS + 1))
        assert faults.lost == _expected_losses(plan, j) > 0
        # a lost frame is never waited for: no round ran into its timeout
        assert stats[-1].timeouts == 0
        assert sum(s.received for s in stats) <= 2 * ROUNDS - faults.lost


async def test_a_peer_holds_before_its_crash_round_until_stopped(tmp_path: Path) -> None:
    plan = FaultPlan(seed=0, index=INDEX, peers=PEERS, hold_at=(3,), gate_dir=tmp_path)
    faults = Faults(plan, me="p1", prefix="rumor", max_bytes=1024)
    stop = asyncio.Event()
    await faults.before_round(2, stop)  # no hold there
    held = asyncio.create_task(faults.before_round(3, stop))
    async with asyncio.timeout(30):
        while not hold_path(tmp_path, 3, "p1").exists():  # noqa: ASYNC110 (a file)
            await asyncio.sleep(0.01)
    assert not held.done()
    stop.set()
    await asyncio.wait_for(held, 30)


async def test_a_peer_waits_at_a_gate_until_it_opens(tmp_path: Path) -> None:
    plan = FaultPlan(seed=0, index=INDEX, peers=PEERS, gates=(5,), gate_dir=tmp_path)
    faults = Faults(plan, me="p2", prefix="rumor", max_bytes=1024)
    waiting = asyncio.create_task(faults.before_round(5, asyncio.Event()))
    gate = gate_path(tmp_path, 5)
    async with asyncio.timeout(30):
        while not (gate / "p2").exists():  # noqa: ASYNC110 (a file)
            await asyncio.sleep(0.01)
    assert not waiting.done()
    (gate / GATE_OPEN).touch()
    await asyncio.wait_for(waiting, 30)
    assert faults.resume(2) == 2
    resumed = Faults(
        FaultPlan(seed=0, index=INDEX, peers=PEERS, resume_at=5), me="p2", prefix="r", max_bytes=1
    )
    assert resumed.resume(2) == 5
    assert resumed.resume(8) == 8


def test_the_plan_file_is_json_a_reader_can_check(tmp_path: Path) -> None:
    plan = FaultPlan(seed=1, index=INDEX, peers=PEERS, drop=0.1)
    assert json.loads(plan_to_json(plan))["drop"] == 0.1


class _Recording(MemoryTransport):
    """A memory transport that notes every publish's topic in a log it shares with a fake sleep."""

    def __init__(self, broker: MemoryBroker, me: str, events: list[str], presence: Presence):
        super().__init__(broker, client_id=me, presence=presence)
        self.events = events

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        self.events.append(topic.split("/")[2])  # the kind: key, delta, telemetry, ...
        await super().publish(topic, payload, qos=qos, retain=retain)


async def test_a_slow_link_holds_every_frame_of_that_peer_and_of_no_other() -> None:
    slow = {1: 250.0}  # what `rumor up --slow-link 1:ms=250` puts in the plans (test_up_failures)
    broker = MemoryBroker()
    events: list[list[str]] = [[] for _ in range(PEERS)]
    runs = []
    for j in range(PEERS):
        config = peer_config(j, PEERS, rounds=ROUNDS)
        ident = config.identity
        presence = Presence(topic=topic("presence", swarm=ident.swarm, peer=ident.peer))
        transport = _Recording(broker, ident.peer, events[j], presence)
        plan = FaultPlan(seed=0, index=INDEX, peers=PEERS, slow_ms=slow.get(j, 0.0))

        async def sleep(seconds: float, log: list[str] = events[j]) -> None:
            log.append(f"sleep {seconds:g}")  # a fake clock: the wait, where it happens

        faults = Faults(plan, me=ident.peer, prefix=ident.prefix, max_bytes=1 << 20, sleep=sleep)
        hood = static_neighbourhood(config.topology, me=ident.peer)
        assert hood is not None
        learner = load_learner(config, index=j, peers=PEERS)
        runtime = PeerRuntime(config, transport, learner, neighbourhood=hood, faults=faults)
        runs.append((transport, runtime))
    results = await asyncio.gather(*(drive(t, r, meet=True) for t, r in runs))
    for j, (stats, _) in enumerate(results):
        assert [s.round for s in stats] == list(range(1, ROUNDS + 1))
        frames = [i for i, e in enumerate(events[j]) if e in ("key", "delta")]
        assert len(frames) == ROUNDS
        if j in slow:  # each frame right after its wait, and no other publish waits
            assert [events[j][i - 1] for i in frames] == ["sleep 0.25"] * ROUNDS
            assert events[j].count("sleep 0.25") == ROUNDS
        else:
            assert not [e for e in events[j] if e.startswith("sleep")]
