"""A diverged run says so (exit 1, summary.json, sweep.csv), and a sweep without a target reports
no to-target figures rather than zeros."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

Rumor = Callable[[list[str]], int]
_DIVERGING = ["--task", "synthetic", "--lr", "1e300", "--peers", "4", "--quiet"]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_diverged_sim_exits_1_naming_the_round_and_keeps_its_outputs(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["sim", *_DIVERGING, "--rounds", "6", "--eval-every", "3", "--out", str(out)]
    assert rumor(argv) == 1
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert summary["diverged"] == records[-1]["round"] == 1, "stops at the first bad round"
    assert records[-1]["consensus_distance"] is None
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rumor sim: diverged at round 1: some parameters are no longer finite (lr 1e+300); "
        "the run stopped there"
    ]


def test_a_finite_run_records_no_divergence(rumor: Rumor, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert rumor(["sim", "--peers", "3", "--rounds", "2", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["diverged"] is None


def test_a_sweep_marks_diverged_runs(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    argv = ["sweep", *_DIVERGING, "--rounds", "4", "--codecs", "raw,sign", "--out", str(out)]
    assert rumor(argv) == 1
    rows = _csv(out / "sweep.csv")
    assert [(r["codec"], r["diverged"], r["final_distance"]) for r in rows] == [
        ("raw", "1", ""),
        ("sign", "1", ""),
    ]
    captured = capsys.readouterr()
    assert captured.out.count(" diverged ") == 2
    assert "rumor sweep: ring raw none seed 0 diverged at round 1" in captured.err


def test_a_learning_sweep_without_target_reports_no_to_target_figures(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    argv = ["sweep", "--task", "synthetic", "--peers", "4", "--rounds", "4", "--eval-every", "2"]
    assert rumor([*argv, "--out", str(out), "--quiet"]) == 0
    (row,) = _csv(out / "sweep.csv")
    assert (row["rounds_to_target"], row["bytes_to_target"], row["diverged"]) == ("", "", "")
    table = capsys.readouterr().out.splitlines()
    assert table[2].split()[-4:-2] == ["n/a", "n/a"]


def test_a_learning_sweep_with_a_target_reports_it(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    argv = ["sweep", "--task", "synthetic", "--peers", "4", "--rounds", "4", "--eval-every", "2"]
    assert rumor([*argv, "--target-acc", "0.05", "--out", str(out), "--quiet"]) == 0
    (row,) = _csv(out / "sweep.csv")
    assert row["rounds_to_target"] == "0"
    assert row["bytes_to_target"] == "0"
    assert capsys.readouterr().out.splitlines()[2].split()[-4:-2] == ["0", "0.00"]
