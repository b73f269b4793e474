from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from peer.cli import main

RUMOR = Path(sys.executable).parent / "rumor"


def test_json_output_of_a_ring(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "ring", "--nodes", "16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rho = (2 / 3) * (1 - math.cos(2 * math.pi / 16))
    assert data == {
        "nodes": 16,
        "edges": 16,
        "min_degree": 2,
        "max_degree": 2,
        "diameter": 8,
        "spectral_gap": pytest.approx(rho),
        "consensus_rounds": math.ceil(math.log(1000) / rho),
    }


def test_text_output_names_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["topology", "random_regular:d=4", "--nodes", "20", "--seed", "3", "--rule", "uniform"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for label in ("nodes", "edges", "degree", "diameter", "spectral gap", "consensus rounds"):
        assert label in out
    assert "random_regular:d=4 (seed 3)" in out
    assert "uniform weights" in out


def test_graph_file_with_string_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "swarm.graphml"
    nx.write_graphml(nx.relabel_nodes(nx.cycle_graph(6), lambda i: f"peer-{i}"), path)
    assert main(["topology", "--file", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["nodes"], data["edges"], data["diameter"]) == (6, 6, 3)
    assert data["spectral_gap"] == pytest.approx((2 / 3) * (1 - math.cos(2 * math.pi / 6)))


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "torus.png"
    assert main(["topology", "torus", "--nodes", "16", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["nope", "--nodes", "8"],
            "unknown topology 'nope'; accepted: ring, torus:rows=.., complete",
        ),
        (["ring:d=3", "--nodes", "8"], "ring: unknown parameter(s) d; accepted: none"),
        (["hypercube", "--nodes", "12"], "hypercube: n = 12 is not a power of two"),
        (["ring"], "--nodes N is required"),
        ([], "give either a family NAME or --file PATH"),
        (["--file", "missing.graphml"], "cannot read graph file missing.graphml"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["topology", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rumor topology: error: ")
    assert fragment in err
    assert err.count("\n") == 1


def test_disconnected_file_names_component_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "split.edgelist"
    path.write_text("a b\nb c\nd e\n")
    with pytest.raises(SystemExit, match="2"):
        main(["topology", "--file", str(path)])
    assert "2 components of sizes 3, 2" in capsys.readouterr().err


def test_help_lists_families_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["topology", "--help"])
    out = capsys.readouterr().out
    assert "small_world:k=..,p=..,seed=.." in out
    assert "rumor topology random_regular:d=4 --nodes 1000" in out


def test_installed_command_end_to_end() -> None:
    result = subprocess.run(
        [str(RUMOR), "topology", "ring", "--nodes", "16", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert round(data["spectral_gap"], 4) == 0.0507
    assert data["consensus_rounds"] == 137
