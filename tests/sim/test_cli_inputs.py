"""Bad ``rumor sim`` / ``rumor sweep`` input: one line naming the flag and value, exit 2, and no
work done (no directory); output parents that do not exist yet are created."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.config import SimConfig
from sim.report import run_and_report

Rumor = Callable[[list[str]], int]


def _one_line_error(
    rumor: Rumor, argv: list[str], capsys: pytest.CaptureFixture[str], command: str
) -> str:
    with pytest.raises(SystemExit) as exit_info:
        rumor(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"rumor {command}: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--topologies", ","], ["--topologies ','", "no item"]),
        (["--topologies", ""], ["--topologies ''"]),
        (["--topologies", "ring,moebius"], ["--topologies 'moebius'", "moebius"]),
        (["--codecs", ","], ["--codecs ','"]),
        (["--codecs", "zip"], ["--codecs 'zip'"]),
        (["--codecs", "sign:gamma=2"], ["--codecs 'sign:gamma=2'", "gamma"]),
        (["--seeds", "a"], ["--seeds 'a'", "'a' is not an integer"]),
        (["--seeds", "1.5"], ["--seeds '1.5'", "not an integer"]),
        (["--seeds", "0,-1"], ["--seeds '0,-1'", "-1 is negative"]),
        (["--seeds", ","], ["--seeds ','"]),
        (["--failures", "drop=abc"], ["--failures 'drop=abc'", "drop='abc' is not a number"]),
        (["--failures", "drop=2"], ["--failures 'drop=2'", "drop probability"]),
        (["--failures", "none;"], ["--failures ''", "empty setting"]),
        (["--failures", ";"], ["--failures ';'"]),
        (["--failures", "crash=x"], ["--failures 'crash=x'", "invalid crash"]),
        (["--failures", "byzantine=0.1:attack=ipm/eps=0"], ["ipm: eps=0 out of range"]),
        (["--target-acc", "0.5"], ["--target-acc needs a task with a model"]),
        (["--target-acc", "nan", "--task", "synthetic"], ["--target-acc must be in (0, 1]"]),
        (["--target-distance", "2"], ["--target-distance must be in (0, 1)"]),
        (["--task", "synthetic", "--target-distance", "0.1"], ["--target-distance is for"]),
        (["--threads", "0"], ["--threads must be >= 1"]),
        (["--peers", "-3"], ["peers must be"]),
        (["--rounds", "0"], ["rounds must be"]),
    ],
)
def test_bad_sweep_flags_are_one_line_errors_before_any_work(
    rumor: Rumor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragments: list[str],
) -> None:
    out = tmp_path / "parent" / "sweep"
    argv = ["sweep", "--rounds", "2", "--peers", "4", *args, "--out", str(out), "--quiet"]
    line = _one_line_error(rumor, argv, capsys, "sweep")
    for fragment in fragments:
        assert fragment in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--lr", "-1"], "lr must be"),
        (["--dim", "0"], "dim must be"),
        (["--local-steps", "-1"], "local_steps must be"),
        (["--eval-every", "0"], "eval_every must be"),
        (["--seed", "-2"], "seed must be"),
        (["--threads", "0"], "--threads must be >= 1"),
        (
            ["--topology", "exponential:directed=true"],
            "topology 'exponential:directed=true' is a directed graph",
        ),
        (["--byzantine", "0.1:attack=lie"], "unknown attack 'lie'"),
        (["--byzantine", "0.1:attack=alie,eps=1"], "alie: unknown parameter(s) eps; accepted: z"),
        (["--byzantine", "0.25:attack=labelflip"], "labelflip needs a task with training data"),
    ],
)
def test_bad_sim_numbers_are_one_line_errors(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    argv = ["sim", "--rounds", "2", *args, "--out", str(tmp_path / "a" / "run"), "--quiet"]
    assert fragment in _one_line_error(rumor, argv, capsys, "sim")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["sim", "sweep"])
def test_engine_is_a_choice(rumor: Rumor, capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rumor([command, "--engine", "gpu"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'gpu' (choose from 'vector', 'loop')" in capsys.readouterr().err


def test_out_parents_that_do_not_exist_are_created(rumor: Rumor, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "deep" / "ring"
    assert rumor(["sim", "--peers", "3", "--rounds", "2", "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").is_file()


def test_out_under_a_file_is_a_one_line_error(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    argv = ["sim", "--peers", "3", "--rounds", "2", "--out", str(tmp_path / "file" / "run")]
    assert "cannot create output parent" in _one_line_error(rumor, argv, capsys, "sim")


def test_an_interrupted_run_removes_the_parents_it_created(tmp_path: Path) -> None:
    def interrupt(stats: object) -> None:
        raise KeyboardInterrupt

    config = SimConfig(peers=4, rounds=5, out=tmp_path / "a" / "b" / "run")
    with pytest.raises(KeyboardInterrupt):
        run_and_report(config, on_round=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_an_unresolvable_spectral_gap_is_reported_not_fatal(
    rumor: Rumor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3,000-peer ring's gap (about 2e-6) is beyond the bounded sparse solver."""
    out = tmp_path / "ring"
    argv = ["sim", "--peers", "3000", "--rounds", "1", "--dim", "2", "--out", str(out), "--quiet"]
    assert rumor(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["spectral_gap"] is None
    assert "not converged" in summary["spectral_gap_note"]
    assert "spectral gap not reported: not converged" in capsys.readouterr().out
