"""Plug-in models and data in the simulator: vector == loop, regression, bad plug-ins exit 2."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import peer.cli
from sim.cli import register
from sim.config import SimConfig, failures_from_mapping
from tests.sim.conftest import run

MODS = "tests.peer.plugins.usermods"
BN_ADAM = SimConfig(
    data=f"{MODS}:blobs",
    model=f"{MODS}:bnnet",
    optimizer="adam",
    lr=0.01,
    topology="ring",
    peers=6,
    rounds=20,
    local_steps=2,
    batch_size=8,
    eval_every=10,
)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"failures": failures_from_mapping({"stragglers": "0.5:steps=1", "crash": "1@3-9"})},
        {"optimizer": "sgd:momentum=0.9,weight_decay=0.001", "drop": 0.3},
    ],
    ids=["adam", "adam-stragglers-crash", "momentum-drop"],
)
def test_vector_matches_loop_for_a_batchnorm_module(changes: dict[str, object]) -> None:
    if "drop" in changes:
        changes = {k: v for k, v in changes.items() if k != "drop"}
        changes["failures"] = failures_from_mapping({"drop": 0.3})
    config = dataclasses.replace(BN_ADAM, **changes)  # type: ignore[arg-type]
    stats, x0, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop"))
    assert float((vector - x0).abs().max()) > 1e-2, "nothing happened"
    assert float((vector - loop).abs().max()) <= 1e-5
    # the running statistics moved: BatchNorm buffers are in the gossiped vector
    var = slice(6 * 8 + 8 + 8 + 8, 6 * 8 + 8 + 8 + 8 + 8)
    assert not torch.equal(vector[:, var], x0[:, var])
    assert stats[-1].acc_mean is not None
    assert stats[-1].acc_mean > 0.5


def test_regression_with_mse_learns() -> None:
    config = dataclasses.replace(
        BN_ADAM,
        data=f"{MODS}:line",
        model=f"{MODS}:regressor",
        loss="mse",
        metric="mse",
        optimizer="adam",
        rounds=30,
        lr=0.02,
    )
    stats, _, _ = run(config)
    first, last = stats[0].acc_mean, stats[-1].acc_mean
    assert first is not None
    assert last is not None
    assert math.isfinite(last)
    assert last < 0.5 * first


BAD_RUNS = {
    "model import": ["--model", "no_such_module_xyz:net"],
    "model return": ["--model", f"{MODS}:not_a_module"],
    "output shape": ["--model", f"{MODS}:regressor"],
    "nan loss": ["--model", f"{MODS}:nan_net"],
    "data return": ["--data", f"{MODS}:not_pairs", "--model", f"{MODS}:bnnet"],
    "optimizer": ["--optimizer", "rmsprop"],
}


@pytest.mark.parametrize("case", BAD_RUNS, ids=list(BAD_RUNS))
def test_bad_plugins_exit_2_before_any_round(
    case: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
) -> None:
    entry = type("E", (), {"name": "sim", "load": staticmethod(lambda: register)})
    monkeypatch.setattr(peer.cli, "entry_points", lambda group: [entry])
    argv = ["sim", "--data", f"{MODS}:blobs", "--model", f"{MODS}:bnnet", "--peers", "2"]
    argv += ["--rounds", "2", "--quiet", "--out", str(tmp_path) + "/run", *BAD_RUNS[case]]
    with pytest.raises(SystemExit) as info:
        peer.cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "rounds.jsonl" not in err
    named = BAD_RUNS[case][-1].split(":")[0]
    assert named in err


def test_a_regression_run_reports_mse_in_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = type("E", (), {"name": "sim", "load": staticmethod(lambda: register)})
    monkeypatch.setattr(peer.cli, "entry_points", lambda group: [entry])
    out = tmp_path / "run"
    argv = ["sim", "--data", f"{MODS}:line", "--model", f"{MODS}:regressor", "--loss", "mse"]
    argv += ["--metric", "mse", "--optimizer", "adam", "--lr", "0.02", "--peers", "4"]
    argv += ["--rounds", "10", "--eval-every", "5", "--quiet", "--out", str(out)]
    assert peer.cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "mse mean" in printed
    assert "lower is better" in printed
    records = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert all("mse_mean" in r and "acc_mean" not in r for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == {"name": "mse", "key": "mse_mean", "higher_is_better": False}
    assert (out / "mse.png").exists()
    assert not (out / "accuracy.png").exists()


def test_a_sweep_reaches_an_mse_target_from_above() -> None:
    from sim.sweep import to_target

    records: list[dict[str, float | int | None]] = [
        {"round": 0, "mse_mean": 2.0, "bytes_sent": 0, "consensus_distance": 1.0},
        {"round": 5, "mse_mean": 0.4, "bytes_sent": 50, "consensus_distance": 0.1},
    ]
    assert to_target(
        records,
        target="accuracy",
        target_acc=0.5,
        target_distance=1e-3,
        key="mse_mean",
        higher=False,
    ) == (5, 50)


@pytest.mark.parametrize("optimizer", ["adam", "sgd:momentum=0.9,weight_decay=0.001", "adamw"])
def test_built_in_models_train_with_any_optimizer_identically_in_both_engines(
    optimizer: str,
) -> None:
    config = SimConfig(
        task="synthetic",
        model="mlp:hidden=8",
        topology="ring",
        peers=6,
        rounds=20,
        local_steps=2,
        optimizer=optimizer,
        lr=0.01,
        eval_every=10,
    )
    stats, x0, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop"))
    assert float((vector - x0).abs().max()) > 0.1
    assert float((vector - loop).abs().max()) <= 1e-5
    assert stats[-1].acc_mean is not None
    assert stats[-1].acc_mean > 0.5
