"""``rumor up``'s failure flags: the simulator's grammar and schedules, checked before launch."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from peer.commands import register
from peer.faults import load_plan
from peer.up.failures import UpFailures, alive_at, plan_for
from peer.up.faultlaunch import FaultLaunch
from peer.up.settings import UpConfig, peer_configs, up_config
from protocol.errors import ConfigError
from protocol.failures import Crash
from sim.failure_masks import FailureModel
from sim.failures import FailureConfig, Stragglers
from tests.peer.up_helpers import up_refusal


def _up(tmp_path: Path, *argv: str) -> UpConfig:
    parser = argparse.ArgumentParser(prog="rumor")
    register(parser.add_subparsers(dest="command", required=True))
    return up_config(parser.parse_args(["up", "--out", str(tmp_path), *argv]))


def test_the_flags_read_as_the_simulator_reads_them(tmp_path: Path) -> None:
    up = _up(
        tmp_path,
        *("--crash", "2@30-60", "--crash", "5@70", "--drop", "0.2"),
        *("--partition-window", "40-70:fraction=0.25", "--stragglers", "0.25:steps=1"),
        *("--churn", "up=20,down=5,fraction=0.5", "--broker-outage", "10-20"),
        *("--slow-link", "3:ms=40"),
    )
    failures = up.failures
    assert failures.crashes == (Crash(peer=2, at=30, recover=60), Crash(peer=5, at=70))
    assert failures.outage == (10, 20)
    assert failures.slow == {3: 40.0}
    # what failures.json offers for a replay parses back to the same settings
    replay = _up(tmp_path, *failures.sim_flags()).failures
    assert replay.crashes == failures.crashes
    assert replay.drop == failures.drop
    assert replay.partition == failures.partition
    assert replay.churn == failures.churn
    assert replay.stragglers == failures.stragglers


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--crash", "2@"], "invalid crash '2@'"),
        (["--crash", "9@3"], "--crash: peer 9 does not exist (0..7)"),
        (["--drop", "1.5"], "drop probability must be a number in [0, 1]"),
        (["--partition-window", "70-40"], "START < END"),
        (["--broker-outage", "5"], "invalid --broker-outage '5'"),
        (["--slow-link", "1:s=3"], "unknown parameter(s) s"),
        (["--slow-link", "12:ms=3"], "--slow-link: peer 12 does not exist"),
        (["--churn", "up=5"], "expected up=U,down=D"),
        (["--eval-every", "0"], "--eval-every 0: expected at least 1"),
        (["--broker-outage", "3-5", "--broker", "127.0.0.1:1883"], "not with --broker"),
    ],
)
def test_a_bad_failure_flag_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in up_refusal(tmp_path, capsys, argv)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["1:ms=nan"], "0 <= D <= 60000"),
        (["1:ms=inf"], "0 <= D <= 60000"),
        (["1:ms=60001"], "0 <= D <= 60000"),
        (["1:ms=-1"], "0 <= D <= 60000"),
        (["\uff11:ms=5"], "a peer index"),  # a fullwidth digit one: int() would read it as 1
        (["1:ms=5", "1:ms=9"], "--slow-link: peer 1 given twice"),
    ],
)
def test_a_slow_link_the_plan_would_refuse_is_refused_as_a_flag(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    # Before any launch: the plan's own check (slow_ms in [0, 60000]) only ran when the
    # launcher wrote the plans, after the broker was started.
    with pytest.raises(ConfigError, match="slow-link") as info:
        _up(tmp_path, *(arg for flag in flags for arg in ("--slow-link", flag)))
    assert message in str(info.value)


def test_the_slow_link_is_in_that_peers_plan_only(tmp_path: Path) -> None:
    up = _up(tmp_path, "--peers", "4", "--slow-link", "1:ms=250", "--slow-link", "3:ms=0.5")
    launch = FaultLaunch(up.failures, out=tmp_path, peers=4, rounds=5, seed=up.seed)
    plans = [load_plan(Path(launch.args(j)[1])) for j in range(4)]
    assert [p.slow_ms for p in plans] == [0.0, 250.0, 0.0, 0.5]


def test_stragglers_are_the_simulators_peers_with_the_simulators_steps(tmp_path: Path) -> None:
    up = _up(tmp_path, "--peers", "8", "--stragglers", "0.375:steps=2", "--local-steps", "6")
    launch = FaultLaunch(up.failures, out=tmp_path, peers=8, rounds=20, seed=up.seed)
    configs = peer_configs(up, host="127.0.0.1", port=1883)
    steps = [
        launch.configure(c, j, local_steps=6).learning.local_steps for j, c in enumerate(configs)
    ]
    sim = FailureModel(
        FailureConfig(stragglers=Stragglers(fraction=0.375, steps=2)),
        peers=8,
        rounds=20,
        local_steps=6,
        seed=up.seed,
    )
    assert steps == sim.steps(np.ones(8, dtype=bool)).tolist()
    assert sorted(steps) == [2, 2, 2, 6, 6, 6, 6, 6]


def test_each_launch_holds_before_its_crashes_and_waits_at_the_gates_it_is_up_for(
    tmp_path: Path,
) -> None:
    failures = UpFailures(crashes=(Crash(peer=2, at=3, recover=6), Crash(peer=1, at=8)))
    periods = failures.down(4, 10, seed=0)
    first = plan_for(failures, 2, peers=4, periods=periods, seed=0, gate_dir=tmp_path)
    assert (first.hold_at, first.gates, first.resume_at) == ((3,), (6,), None)
    again = plan_for(failures, 2, peers=4, periods=periods, seed=0, gate_dir=tmp_path, resume_at=6)
    assert again.resume_at == 6
    other = plan_for(failures, 1, peers=4, periods=periods, seed=0, gate_dir=tmp_path)
    assert (other.hold_at, other.gates) == ((8,), (6,))
    assert not alive_at(periods, 2, 5)
    assert alive_at(periods, 2, 6)
    assert not alive_at(periods, 1, 9)


def test_churn_gives_the_simulators_down_periods(tmp_path: Path) -> None:
    up = _up(tmp_path, "--peers", "6", "--churn", "up=4,down=2")
    periods = up.failures.down(6, 50, seed=up.seed)
    sim = FailureModel(
        FailureConfig(churn=up.failures.churn), peers=6, rounds=50, local_steps=1, seed=up.seed
    )
    for r in range(50):
        assert [alive_at(periods, j, r) for j in range(6)] == sim.alive(r).tolist()
