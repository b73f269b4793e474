"""``--device``: names checked up front, cuda refused in one line where there is none, and CUDA
results matching CPU results to float tolerance (run wherever a GPU exists, skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import peer.cli
from protocol.errors import ConfigError
from sim.config import SimConfig
from sim.device import resolve_device
from sim.runner import Simulation

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device here (CI has none)")


def test_unknown_device_names_fail_in_the_config() -> None:
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        SimConfig(device="gpu")


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_one_line_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="no CUDA device is available"):
        Simulation(SimConfig(task="consensus", peers=4, rounds=1, device="cuda"))
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        peer.cli.main(["sim", "--rounds", "2", "--device", "cuda", "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "no CUDA device is available" in lines[0]
    assert not out.exists()


def test_auto_falls_back_to_cpu_without_cuda() -> None:
    expected = "cuda" if CUDA else "cpu"
    assert resolve_device("auto").type == expected
    sim = Simulation(SimConfig(task="consensus", peers=4, rounds=1, device="auto"))
    assert sim.engine.params().device.type == expected


@needs_cuda
def test_loop_engine_refuses_cuda() -> None:
    with pytest.raises(ConfigError, match="loop engine"):
        Simulation(SimConfig(task="consensus", peers=4, rounds=1, engine="loop", device="cuda"))


CASES = [
    {"task": "synthetic", "codec": "raw"},
    {"task": "synthetic", "codec": "randk:fraction=0.2", "drop": 0.2},
    {"task": "synthetic", "model": "mlp:hidden=8", "codec": "sign", "byzantine": "0.125"},
    {"task": "synthetic", "aggregator": "trimmed_mean:b=1", "crash": "2@3-6"},
    {"task": "consensus", "codec": "int8"},
    {"task": "synthetic", "byzantine": "0.125:attack=noise", "aggregator": "clip"},
    {"task": "synthetic", "dp": "clip=1,sigma=0.1", "stragglers": "0.25:steps=0"},
]


@needs_cuda
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_cuda_matches_cpu_within_float_tolerance(case: dict[str, object]) -> None:
    from sim.config import config_from_settings

    settings = {"topology": "random_regular:d=4", "peers": 16, "rounds": 8, **case}
    results = []
    for device in ("cpu", "cuda"):
        sim = Simulation(config_from_settings({**settings, "device": device}))
        stats = list(sim.run())
        results.append((stats[-1], sim.engine.params().cpu()))
    (cpu_stats, cpu_x), (cuda_stats, cuda_x) = results
    assert cuda_x.dtype == cpu_x.dtype
    torch.testing.assert_close(cuda_x, cpu_x, rtol=1e-4, atol=1e-5)
    assert cuda_stats.bytes_sent == cpu_stats.bytes_sent
    assert cuda_stats.alive == cpu_stats.alive


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_sweep_refuses_cuda_without_cuda_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--task", "consensus", "--topologies", "ring", "--rounds", "2"]
    with pytest.raises(SystemExit) as exit_info:
        peer.cli.main([*args, "--device", "cuda", "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    assert "no CUDA device is available" in capsys.readouterr().err
    assert not out.exists()
