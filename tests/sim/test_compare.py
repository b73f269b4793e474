"""``rumor compare``: runs of sim, sweep and up overlaid; final values and the largest gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peer import cli
from sim.compare import compare_table, largest_gap, load_curves, metric_of


def _run(directory: Path, accs: list[float], *, up: bool = False) -> Path:
    directory.mkdir(parents=True)
    with (directory / "rounds.jsonl").open("w") as stream:
        for i, acc in enumerate(accs):
            record = {
                "round": 10 * i,
                "acc_mean": acc,
                "acc_min": acc - 0.05,
                "acc_max": acc + 0.05,
                "consensus_distance": 1.0 / (i + 1),
                "bytes_sent": 1_000_000 * i,
            }
            stream.write(json.dumps(record) + "\n")
    summary: dict[str, object] = {"broker": "127.0.0.1:1"} if up else {"config": {}}
    (directory / "summary.json").write_text(json.dumps(summary))
    return directory


def test_the_table_gives_final_values_and_the_largest_gap(tmp_path: Path) -> None:
    sim = _run(tmp_path / "sim", [0.1, 0.5, 0.7])
    up = _run(tmp_path / "up", [0.1, 0.42, 0.69], up=True)
    curves = load_curves([sim, up])
    assert [label for label, _ in curves] == ["sim (sim)", "up (up)"]
    assert metric_of(curves) == "acc_mean"
    gap = largest_gap(curves, "acc_mean")
    assert gap is not None
    assert gap[:3] == ("sim (sim)", "up (up)", 10)
    assert gap[3] == pytest.approx(0.08)
    table = compare_table(curves, "acc_mean")
    assert "0.6900" in table
    assert "largest gap in acc_mean: 0.0800 at round 10" in table


def test_a_sweep_gives_one_curve_per_setting_and_seed(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    lines = [
        {"topology": t, "codec": "raw", "seed": s, "failures": "none", "round": r, "acc_mean": 0.5}
        for t in ("ring", "torus")
        for s in (0, 1)
        for r in (0, 10)
    ]
    (sweep / "curves.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    curves = load_curves([sweep])
    assert len(curves) == 4
    assert all(len(records) == 2 for _, records in curves)


def test_rumor_compare_writes_one_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = _run(tmp_path / "sim", [0.1, 0.5, 0.7])
    up = _run(tmp_path / "up", [0.1, 0.45, 0.7], up=True)
    out = tmp_path / "both.png"
    assert cli.main(["compare", str(sim), str(up), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "largest gap in acc_mean: 0.0500" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no rounds.jsonl or curves.jsonl"), ("{not json", "not JSON lines")],
)
def test_something_that_is_not_a_run_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "rounds.jsonl").write_text(content)
    with pytest.raises(SystemExit) as info:
        cli.main(["compare", str(run), "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
