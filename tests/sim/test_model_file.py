"""``rumor sim --out`` writes the average model; loaded into a fresh module it reproduces the
run's reported metric for the average model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch

from examples import forecast, har
from peer.cli import main
from peer.tasks.models import model_from_spec
from peer.tasks.modules import torch_module
from sim.model_file import average_state


def _sim(out: Path, *args: str) -> dict[str, float]:
    argv = ["sim", "--peers", "4", "--rounds", "4", "--threads", "1", "--quiet", *args]
    assert main([*argv, "--out", str(out)]) == 0
    final: dict[str, float] = json.loads((out / "summary.json").read_text())["final"]
    return final


def test_the_average_regression_model_reproduces_its_mse(tmp_path: Path) -> None:
    final = _sim(
        tmp_path,
        *("--model", "examples.forecast:net", "--data", "examples.forecast:data"),
        *("--loss", "mse", "--metric", "mse", "--optimizer", "adam", "--lr", "0.005"),
    )
    net = forecast.net()
    net.load_state_dict(safetensors.torch.load_file(tmp_path / "model.safetensors"))
    _, (x_test, y_test) = forecast.data(0, 4, seed=0)
    with torch.no_grad():
        mse = float(((net(x_test) - y_test) ** 2).mean())
    assert mse == pytest.approx(final["mse_avg_model"], abs=1e-6)


def test_the_average_batchnorm_model_reproduces_its_accuracy(tmp_path: Path) -> None:
    final = _sim(
        tmp_path,
        *("--model", "examples.har:net", "--data", "examples.har:data:samples=64"),
        *("--optimizer", "adam", "--lr", "0.003", "--batch-size", "16"),
    )
    net = har.net()
    net.load_state_dict(safetensors.torch.load_file(tmp_path / "model.safetensors"))
    net.eval()
    _, (x_test, y_test) = har.data(0, 4, seed=0)
    with torch.no_grad():
        accuracy = float((net(x_test).argmax(1) == y_test).double().mean())
    assert accuracy == pytest.approx(final["acc_avg_model"], abs=1e-6)


def test_a_consensus_run_has_no_model_file(tmp_path: Path) -> None:
    _sim(tmp_path, "--task", "consensus")
    assert not (tmp_path / "model.safetensors").exists()


def test_average_state_of_a_built_in_model_matches_its_flat_forward() -> None:
    flat = model_from_spec("mlp:hidden=5", 6, 3)
    rows = torch.stack([flat.init(seed=s) for s in range(3)])
    module = torch_module(flat)
    module.load_state_dict(average_state(flat, rows))
    x = torch.randn(4, 6)
    assert torch.allclose(module(x), flat.forward(rows.mean(0), x), atol=1e-6)
