"""The examples as their docstrings run them: ``rumor sim``, ``rumor up`` and ``rumor export``.

These are the figures the examples promise: the activity example reaches 0.85 mean peer accuracy
with 16 peers on a torus and learns in a 4-peer swarm; the forecast ends below half the MSE of
predicting the training mean; an exported model reproduces the peer's reported accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch

from examples import forecast, har
from peer.broker import Broker
from peer.cli import main

pytestmark = pytest.mark.slow

_ADAM = ["--optimizer", "adam", "--local-steps", "5", "--batch-size", "32"]


def _final(out: Path) -> dict[str, float]:
    final: dict[str, float] = json.loads((out / "summary.json").read_text())["final"]
    return final


def test_activity_recognition_in_the_simulator(tmp_path: Path) -> None:
    argv = ["sim", "--model", "examples.har:net", "--data", "examples.har:data"]
    argv += ["--loss", "cross_entropy", "--metric", "accuracy", "--lr", "0.003", *_ADAM]
    argv += ["--peers", "16", "--topology", "torus", "--rounds", "60", "--threads", "1"]
    assert main([*argv, "--quiet", "--out", str(tmp_path)]) == 0
    assert _final(tmp_path)["acc_mean"] >= 0.85


def test_forecasting_in_the_simulator_beats_the_training_mean(tmp_path: Path) -> None:
    argv = ["sim", "--model", "examples.forecast:net", "--data", "examples.forecast:data"]
    argv += ["--loss", "mse", "--metric", "mse", "--lr", "0.005", *_ADAM]
    argv += ["--peers", "16", "--topology", "torus", "--rounds", "40", "--threads", "1"]
    assert main([*argv, "--quiet", "--out", str(tmp_path)]) == 0
    parts = [forecast.data(p, 16, seed=0)[0] for p in range(16)]
    mean = torch.cat([y for _, y in parts]).mean()
    _, (_, y_test) = forecast.data(0, 16, seed=0)
    baseline = float(((y_test - mean) ** 2).mean())
    assert _final(tmp_path)["mse_mean"] <= 0.5 * baseline


def test_activity_recognition_in_a_swarm_then_export(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["up", "--model", "examples.har:net", "--data", "examples.har:data"]
    argv += ["--loss", "cross_entropy", "--metric", "accuracy", "--lr", "0.003", *_ADAM]
    argv += ["--peers", "4", "--topology", "ring", "--rounds", "20", "--broker", broker.address]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for peer in summary["peers"]:
        assert peer["rounds"] == 20
        assert peer["accuracy"] > 0.5, peer  # chance is 1/6
    model = tmp_path / "p0.safetensors"
    assert main(["export", str(tmp_path / "p0"), "--out", str(model)]) == 0
    assert "of round 20" in capsys.readouterr().out
    final = safetensors.torch.load_file(tmp_path / "p0" / "model.safetensors")  # rumor up's own
    exported = safetensors.torch.load_file(model)
    assert final.keys() == exported.keys()
    assert all(torch.equal(final[k], exported[k]) for k in final)
    net = har.net()
    net.load_state_dict(safetensors.torch.load_file(model))
    net.eval()
    _, (x_test, y_test) = har.data(0, 4, seed=0)
    with torch.no_grad():
        accuracy = float((net(x_test).argmax(1) == y_test).double().mean())
    reported = json.loads((tmp_path / "p0" / "stats.jsonl").read_text().splitlines()[-1])
    assert abs(accuracy - reported["accuracy"]) <= 1e-6
