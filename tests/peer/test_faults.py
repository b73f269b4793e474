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
from tests.peer.runtime_helpers import peer_config

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

    async def one(transport: MemoryTransport, runtime: PeerRuntime) -> list[RoundStats]:
        async with transport:
            await transport.state.wait_up()
            async with runtime:
                # every neighbour heard first, so that round 0 is not run alone
                async with asyncio.timeout(30):
                    hood = runtime.hood.neighbours
                    while runtime.liveness.live_set(hood) != hood:  # noqa: ASYNC110 (no presence event)
                        await asyncio.sleep(0.01)
                return [s async for s in runtime.rounds()]

    stats = await asyncio.gather(*(one(t, r) for t, r, _ in runs))
    return [(s, f) for s, (_, _, f) in zip(stats, runs, strict=True)]


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
