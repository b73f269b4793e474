"""``--profile``: the wall time of every round split into phases, printed and written."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.config import SimConfig
from sim.profile import PHASES, PhaseTimer
from sim.runner import Simulation


def test_phases_are_exclusive_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(100))
    timer = PhaseTimer(enabled=True)
    with monkeypatch.context() as patch:
        patch.setattr(time, "perf_counter", lambda: float(next(ticks)))
        # 0 .. 1 train, 1 .. 2 mix, 2 .. 3 train
        with timer.phase("train"), timer.phase("mix"):
            pass
    assert timer.seconds["train"] == 2.0
    assert timer.seconds["mix"] == 1.0
    with pytest.raises(ValueError, match="unknown phase 'nap'"), timer.phase("nap"):
        pass


@pytest.mark.parametrize("engine", ["vector", "loop"])
def test_a_profiled_run_times_every_phase_of_every_round(engine: str) -> None:
    config = SimConfig(
        task="synthetic",
        topology="ring",
        peers=8,
        rounds=4,
        eval_every=2,
        engine=engine,  # type: ignore[arg-type]
        profile=True,
    )
    sim = Simulation(config)
    list(sim.run())
    summary = sim.timer.summary()
    phases = summary["phases"]
    assert isinstance(phases, dict)
    assert list(phases) == list(PHASES)
    assert summary["rounds"] == 4
    spent = {name for name, row in phases.items() if row["total_s"] > 0}
    split = {"train", "compress", "mix"} if engine == "vector" else {"engine"}
    assert spent >= {"failures", "bookkeeping", "evaluate"} | split
    assert sum(row["share"] for row in phases.values()) == pytest.approx(1.0)


def test_unprofiled_runs_time_nothing() -> None:
    sim = Simulation(SimConfig(task="synthetic", topology="ring", peers=4, rounds=2))
    list(sim.run())
    assert not sim.timer.enabled
    assert sum(sim.timer.seconds.values()) == 0.0


def test_cli_prints_the_profile_and_writes_profile_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rumor: Callable[[list[str]], int]
) -> None:
    out = tmp_path / "run"
    args = ["sim", "--task", "synthetic", "--peers", "4", "--rounds", "3", "--quiet"]
    assert rumor([*args, "--profile", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "profile over 3 rounds" in printed
    assert "mix" in printed
    written = json.loads((out / "profile.json").read_text())
    assert written["rounds"] == 3
    assert set(written["phases"]) == set(PHASES)
