"""``rumor peer --attack`` and ``rumor up --byzantine``: bad specs are one-line errors (exit 2),
attackers are drawn by seed, and the report keeps the honest peers apart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from peer import cli
from peer.config import to_toml
from peer.up.byzantine import parse_swarm_attack
from peer.up.procs import PeerProcess
from peer.up.report import attack_summary, peer_rows, render_table
from tests.peer.runtime_helpers import peer_config
from tests.peer.up_helpers import up_refusal


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "lie",
            "unknown attack 'lie'; expected one of signflip, noise, alie, ipm, dissensus, "
            "labelflip",
        ),
        ("ipm:scale=2", "ipm: unknown parameter(s) scale; accepted: eps"),
        ("alie:z=nan", "alie: z=nan out of range; expected a finite number"),
        ("signflip:scale=0", "signflip: scale=0 out of range; expected a finite number > 0"),
    ],
)
def test_peer_refuses_a_bad_attack_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    path = tmp_path / "peer.toml"
    path.write_text(to_toml(peer_config(0, 3)))
    with pytest.raises(SystemExit) as info:
        cli.main(["peer", "--config", str(path), "--attack", spec])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rumor peer: error: {message}", err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--byzantine", "0"], "--byzantine 0: expected 1 to 7 attacking peers (of 8)"),
        (["--byzantine", "8"], "--byzantine 8: expected 1 to 7 attacking peers (of 8)"),
        (["--byzantine", "half"], "--byzantine 'half': expected K[:attack=A,key=value,...]"),
        (["--byzantine", "1:attack=krum"], "unknown attack 'krum'"),
        (["--byzantine", "1:attack=dissensus,eps=-1"], "dissensus: eps=-1 out of range"),
        (
            ["--task", "consensus", "--byzantine", "1:attack=labelflip"],
            "labelflip needs class labels; consensus has none",
        ),
    ],
)
def test_up_refuses_a_bad_byzantine_before_launching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in up_refusal(tmp_path, capsys, argv)


def test_attackers_are_drawn_by_seed_and_get_the_resolved_attack(tmp_path: Path) -> None:
    first = parse_swarm_attack("3:attack=alie", peers=16, seed=4)
    assert first == parse_swarm_attack("3:attack=alie", peers=16, seed=4)
    assert first.indices != parse_swarm_attack("3:attack=alie", peers=16, seed=5).indices
    assert len(set(first.indices)) == 3
    assert first.attack.params["z"] == pytest.approx(0.0966, abs=1e-4)  # the paper's, n=16 f=3
    honest = next(j for j in range(16) if j not in first.indices)
    assert first.args_for(honest) == ()
    assert first.args_for(first.indices[0]) == ("--attack", str(first.attack))
    first.record(tmp_path)
    recorded = json.loads((tmp_path / "byzantine.json").read_text())
    assert recorded == {"attack": str(first.attack), "peers": first.names}


def _process(name: str, tmp_path: Path, accuracy: float) -> PeerProcess:
    stats = tmp_path / f"{name}.jsonl"
    stats.write_text(json.dumps({"metric": "accuracy", "accuracy": accuracy, "round": 3}) + "\n")
    done = subprocess.Popen(["true"])
    done.wait()
    return PeerProcess(
        name=name, process=done, config=tmp_path, stats=stats, log=tmp_path / f"{name}.log"
    )


def test_the_report_gives_honest_peers_apart_from_attackers(tmp_path: Path) -> None:
    peers = [_process(f"p{j}", tmp_path, a) for j, a in enumerate([0.8, 0.6, 0.1, 0.7])]
    rows = peer_rows(peers, attackers=frozenset({"p2"}))
    assert [r["attacker"] for r in rows] == [False, False, True, False]
    summary = attack_summary(rows, "signflip:scale=1.0")["byzantine"]
    assert isinstance(summary, dict)
    assert summary["peers"] == ["p2"]
    assert summary["honest_mean"] == pytest.approx(0.7)
    assert summary["honest_worst"] == pytest.approx(0.6)
    assert summary["attackers_mean"] == pytest.approx(0.1)
    table = render_table(rows)
    assert "honest peers: mean accuracy 0.7000, worst 0.6000 over 3" in table
    assert "attackers (p2): mean accuracy 0.1000" in table
    assert attack_summary(peer_rows(peers), None) == {}
