"""Differential privacy in the simulator: both engines release the same noised models, the
accountant counts the rounds each peer trained, and the outputs report epsilon."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from protocol.errors import ConfigError
from protocol.privacy import clip_update, dp_seed, privatize
from protocol.privacy_accounting import epsilon
from sim.config import SimConfig, failures_from_mapping
from sim.runner import Simulation
from tests.sim.conftest import run

BASE = SimConfig(
    task="synthetic",
    topology="erdos_renyi:p=0.4",
    peers=8,
    lr=0.1,
    rounds=12,
    local_steps=2,
    keyframe_interval=4,
    eval_every=6,
    dp="clip=0.05,sigma=0.5",
)
FAILURES: dict[str, dict[str, object]] = {
    "none": {},
    # a crash and stragglers that take no step: some peers skip rounds, so add no noise then
    "crash+idle": {"crash": "2@3-7", "stragglers": "0.25:steps=0", "drop": 0.2},
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("codec", ["raw", "int8:block=16"])
def test_vector_and_loop_engines_release_the_same_noise(codec: str, failure: str) -> None:
    config = dataclasses.replace(
        BASE, codec=codec, failures=failures_from_mapping(FAILURES[failure])
    )
    _, _start, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop"))
    assert torch.equal(vector, loop), f"differ by up to {float((vector - loop).abs().max()):.3e}"
    _, _, clean = run(dataclasses.replace(config, dp=None))
    assert not torch.equal(vector, clean), "the noise changed nothing"


@pytest.mark.parametrize("engine", ["vector", "loop"])
def test_what_a_peer_publishes_is_protocol_privatize(engine: str) -> None:
    # raw codec, round 1: each public copy is exactly the model the peer released, and the
    # same run without DP publishes the trained model itself
    config = dataclasses.replace(BASE, rounds=1, engine=engine)  # type: ignore[arg-type]
    noisy, plain = Simulation(config), Simulation(dataclasses.replace(config, dp=None))
    x0 = noisy.engine.params().clone()
    list(noisy.run())
    list(plain.run())
    params = config.privacy
    assert params is not None
    for peer in range(config.peers):
        trained = _public(plain, peer)
        seed = dp_seed(config.seed, round=0, peer=peer)
        released = privatize(x0[peer], trained, params, seed=seed)
        assert torch.equal(_public(noisy, peer), released)
        update = clip_update(trained - x0[peer], params.clip)
        assert float(update.norm()) <= params.clip * (1 + 1e-12)


def _public(sim: Simulation, peer: int) -> torch.Tensor:
    x_hat = sim.engine.x_hat  # type: ignore[attr-defined]
    return x_hat[peer].clone()  # type: ignore[no-any-return]


def test_accountant_counts_rounds_trained_per_peer() -> None:
    config = dataclasses.replace(
        BASE, failures=failures_from_mapping(FAILURES["crash+idle"]), rounds=10
    )
    sim = Simulation(config)
    list(sim.run())
    assert sim.accountant is not None
    steps = sim.failures.steps
    expected = np.zeros(config.peers, dtype=np.int64)
    for r in range(config.rounds):
        expected += steps(sim.failures.alive(r)) > 0
    assert sim.accountant.rounds.tolist() == expected.tolist()
    assert expected[2] == 10 - 4 or expected.min() == 0  # the crash, or a zero-step straggler
    assert len(set(expected.tolist())) > 1


def test_outputs_report_epsilon(
    tmp_path: Path, rumor: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["sim", "--task", "synthetic", "--peers", "4", "--rounds", "6", "--eval-every", "3"]
    code = rumor([*args, "--dp", "clip=1,sigma=4,delta=1e-6", "--quiet", "--out", str(out)])
    assert code == 0
    want = epsilon(6, sigma=4.0, delta=1e-6)
    assert f"epsilon <= {want:.3g} at delta 1e-06" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    privacy = summary["privacy"]
    assert privacy["epsilon"] == [want] * 4
    assert privacy["epsilon_max"] == want
    assert privacy["rounds_trained"] == [6] * 4
    assert privacy["sensitivity"] == 2.0
    assert summary["config"]["dp"] == "clip=1,sigma=4,delta=1e-6"
    records = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["dp_epsilon"] for r in records] == [
        0.0,
        epsilon(3, sigma=4.0, delta=1e-6),
        want,
    ]


def test_no_dp_no_epsilon_keys(tmp_path: Path, rumor: Callable[[list[str]], int]) -> None:
    out = tmp_path / "run"
    assert rumor(["sim", "--task", "synthetic", "--rounds", "2", "--quiet", "--out", str(out)]) == 0
    assert "privacy" not in json.loads((out / "summary.json").read_text())
    assert "dp_epsilon" not in (out / "rounds.jsonl").read_text()


@pytest.mark.parametrize(
    ("dp", "needle"),
    [
        ("clip=1", "needs sigma"),
        ("clip=-1,sigma=1", "clip = -1.0"),
        ("sigma=1,clip=1,delta=2", "delta = 2.0"),
    ],
)
def test_bad_dp_flag_is_one_line_exit_2(
    dp: str, needle: str, rumor: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rumor(["sim", "--task", "synthetic", "--dp", dp])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_dp_on_consensus_is_refused() -> None:
    with pytest.raises(ConfigError, match="--dp needs a task with a model"):
        SimConfig(task="consensus", dp="clip=1,sigma=1")


def test_sweep_applies_dp_to_every_run(
    tmp_path: Path, rumor: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--task", "synthetic", "--peers", "4", "--rounds", "4", "--eval-every", "2"]
    args += ["--topologies", "ring,complete", "--dp", "clip=1,sigma=3", "--quiet"]
    assert rumor([*args, "--out", str(out)]) == 0
    # the printed table has the epsilon too, one per setting
    header, _, *table = capsys.readouterr().out.splitlines()[:4]
    assert header.split()[-1] == "epsilon"
    spent = f"{epsilon(4, sigma=3.0, delta=1e-5):.4g}"
    assert [line.split()[-1] for line in table] == [spent, spent]
    curves = [json.loads(line) for line in (out / "curves.jsonl").read_text().splitlines()]
    finals = [c for c in curves if c.get("round") == 4]
    assert len(finals) == 2
    assert {c["dp_epsilon"] for c in finals} == {epsilon(4, sigma=3.0, delta=1e-5)}
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["dp_epsilon"]) for r in rows] == [epsilon(4, sigma=3.0, delta=1e-5)] * 2


def test_dp_from_a_run_file(tmp_path: Path) -> None:
    from sim.config import config_from_settings, load_toml

    path = tmp_path / "run.toml"
    path.write_text('task = "synthetic"\ndp = "clip=0.5,sigma=2"\n')
    config = config_from_settings(load_toml(path))
    assert config.privacy is not None
    assert (config.privacy.clip, config.privacy.sigma) == (0.5, 2.0)
    path.write_text('task = "synthetic"\ndp = 3\n')
    with pytest.raises(ConfigError, match="dp must be a string clip=C,sigma=S"):
        config_from_settings(load_toml(path))


def test_the_sweep_table_has_an_epsilon_column_only_with_dp() -> None:
    from sim.sweep import RunRow, summarise

    def row(seed: int, spent: float | None) -> RunRow:
        return RunRow(
            topology="ring",
            codec="raw",
            gamma=1.0,
            failures="none",
            seed=seed,
            final_acc=0.5,
            final_distance=0.1,
            rounds_to_target=None,
            bytes_to_target=None,
            bytes_total=10**6,
            spectral_gap=0.25,
            diverged=None,
            wall_s=1.0,
            dp_epsilon=spent,
        )

    plain = summarise([row(0, None), row(1, None)], target=None)
    assert "epsilon" not in plain[0]
    assert len(plain[2]) <= len(plain[0])
    private = summarise([row(0, 12.5), row(1, 13.25)], target=None)
    assert private[0].split()[-1] == "epsilon"
    assert private[2].split()[-1] == "13.25"  # the largest of the seeds: the bound that holds
    assert len(private[2]) == len(private[0])  # aligned under its header
