"""``rumor sim`` and ``rumor sweep`` through the real dispatcher (peer.cli.main)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import peer.cli
from sim.cli import register
from sim.config import SimConfig
from sim.report import run_and_report

REQUIRED = {
    "round",
    "acc_mean",
    "acc_min",
    "acc_max",
    "acc_avg_model",
    "test_loss",
    "train_loss",
    "consensus_distance",
    "bytes_sent",
    "wall_s",
}


@dataclass(frozen=True)
class _Entry:
    name: str
    load: Callable[[], Callable[..., None]]


@pytest.fixture(autouse=True)
def _sim_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register sim's commands the way pyproject's entry point will."""
    monkeypatch.setattr(peer.cli, "entry_points", lambda group: [_Entry("sim", lambda: register)])


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def test_sim_writes_rounds_summary_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "sim",
        "--task",
        "synthetic",
        "--peers",
        "6",
        "--rounds",
        "12",
        "--eval-every",
        "4",
        "--codec",
        "sign",
        "--drop",
        "0.1",
        "--crash",
        "2@3-6",
        "--out",
        str(out),
        "--quiet",
    ]
    assert peer.cli.main(argv) == 0
    lines = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in lines] == [0, 4, 8, 12]
    assert all(set(r) >= REQUIRED for r in lines)
    assert all(0 <= r["acc_min"] <= r["acc_mean"] <= r["acc_max"] <= 1 for r in lines)
    assert lines[-1]["bytes_sent"] > lines[1]["bytes_sent"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["config"]["codec"], summary["config"]["peers"]) == ("sign", 6)
    assert summary["final"] == lines[-1]
    assert 0 < summary["spectral_gap"] <= 1
    assert {"accuracy.png", "consensus.png"} <= set(_leftovers(out))
    assert _leftovers(tmp_path) == ["run"], "no staging directory may remain"
    assert "acc mean" in capsys.readouterr().out


def test_consensus_logs_every_round_with_null_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert (
        peer.cli.main(
            [
                "sim",
                "--peers",
                "5",
                "--rounds",
                "7",
                "--eval-every",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in lines] == list(range(8))
    assert all(r["acc_mean"] is None and r["consensus_distance"] > 0 for r in lines)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--peers", "1"], "peers must be"),
        (["--codec", "zip"], "unknown codec"),
        (["--topology", "moebius"], "moebius"),
        (["--drop", "1.5"], "drop probability"),
        (["--crash", "40@3"], "peer 40 does not exist"),
        (["--task", "fmnist", "--data-path", "/nonexistent", "--peers", "4"], "nonexistent"),
        (["--gamma", "0"], "gamma"),
        (["--engine", "gpu"], "invalid choice: 'gpu'"),
        (["--peers", "many"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_leave_no_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        peer.cli.main(["sim", "--rounds", "3", *args, "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("rumor sim: error: ")
    assert fragment in lines[-1]
    if "invalid" not in fragment:  # argparse's own type errors come with a usage block
        assert len(lines) == 1
    assert _leftovers(tmp_path) == []


def test_interrupted_run_leaves_nothing_behind(tmp_path: Path) -> None:
    def interrupt(stats: object) -> None:
        raise KeyboardInterrupt

    config = SimConfig(peers=4, rounds=5, out=tmp_path / "x")
    with pytest.raises(KeyboardInterrupt):
        run_and_report(config, on_round=interrupt)
    assert _leftovers(tmp_path) == []


def test_toml_config_with_cli_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        'task = "consensus"\npeers = 6\nrounds = 4\ncodec = "int8"\n'
        '[failures]\ndrop = 0.2\ncrash = ["1@1-3"]\nchurn = "up=5,down=2"\n'
    )
    out = tmp_path / "t"
    assert (
        peer.cli.main(["sim", "--config", str(toml), "--rounds", "6", "--out", str(out), "--quiet"])
        == 0
    )
    config = json.loads((out / "summary.json").read_text())["config"]
    assert (config["rounds"], config["codec"], config["peers"]) == (6, "int8", 6)
    assert config["failures"]["drop"] == 0.2
    assert config["failures"]["crashes"] == [{"peer": 1, "at": 1, "recover": 3}]


def test_toml_with_unknown_key_is_a_config_error(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("peers = 4\nspeed = 11\n")
    with pytest.raises(SystemExit) as exit_info:
        peer.cli.main(["sim", "--config", str(toml), "--quiet"])
    assert exit_info.value.code == 2


def test_sweep_writes_csv_plot_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    argv = [
        "sweep",
        "--task",
        "consensus",
        "--peers",
        "8",
        "--rounds",
        "60",
        "--topologies",
        "ring,complete",
        "--codecs",
        "raw,sign:gamma=0.4",
        "--failures",
        "none;drop=0.2",
        "--seeds",
        "0,1",
        "--target-distance",
        "1e-4",
        "--keyframe-interval",
        "5",
        "--out",
        str(out),
        "--quiet",
    ]
    assert peer.cli.main(argv) == 0
    with (out / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2 * 2
    sign = [r for r in rows if r["codec"] == "sign"]
    assert {float(r["gamma"]) for r in sign} == {0.4}
    complete = [r for r in rows if r["topology"] == "complete" and r["failures"] == "none"]
    assert all(r["rounds_to_target"] == "1" for r in complete if r["codec"] == "raw")
    assert (out / "comparison.png").stat().st_size > 0
    table = capsys.readouterr().out
    assert table.count("\n") >= 2 + 8
    assert "MB to tgt" in table


def test_bad_sweep_failure_setting_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        peer.cli.main(["sweep", "--failures", "none;drop", "--out", str(tmp_path / "s")])
    assert exit_info.value.code == 2
    assert _leftovers(tmp_path) == []
