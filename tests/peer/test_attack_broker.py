"""A compromised peer among real daemons over a real Mosquitto: ``rumor up --byzantine``.

One signflip attacker among 6 peers on a complete graph, ``clip`` aggregation: the honest peers
end within 5 points of the same swarm without the attacker (same seed, same peers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peer.broker import Broker
from peer.cli import main

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROUNDS = 15
_SWARM = [
    *("--peers", "6", "--topology", "complete", "--rounds", str(ROUNDS), "--task", "fmnist"),
    *("--model", "mlp:hidden=16", "--local-steps", "5", "--batch-size", "16"),
    *("--partition", "iid", "--seed", "0", "--aggregator", "clip"),
]


def _up(broker: Broker, out: Path, *extra: str) -> dict[str, object]:
    swarm = out.name
    argv = ["up", *_SWARM, "--broker", broker.address, "--swarm", swarm, "--out", str(out)]
    assert main([*argv, *extra]) == 0
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


def _accuracies(summary: dict[str, object]) -> dict[str, float]:
    peers = summary["peers"]
    assert isinstance(peers, list)
    for peer in peers:
        assert peer["rounds"] == ROUNDS, peer
        assert peer["rejected"] == 0, peer  # the attacker's frames are valid, signed frames
    return {p["peer"]: p["accuracy"] for p in peers}


def test_clip_keeps_honest_peers_near_a_clean_run_under_a_signflip_peer(
    broker: Broker, tmp_path: Path
) -> None:
    clean = _accuracies(_up(broker, tmp_path / "clean"))
    summary = _up(broker, tmp_path / "attacked", "--byzantine", "1:attack=signflip")
    attacked = _accuracies(summary)
    recorded = json.loads((tmp_path / "attacked" / "byzantine.json").read_text())
    (attacker,) = recorded["peers"]
    byzantine = summary["byzantine"]
    assert isinstance(byzantine, dict)
    assert byzantine["peers"] == [attacker]
    assert "ATTACKS its swarm" in (tmp_path / "attacked" / attacker / "peer.log").read_text()
    honest = [p for p in clean if p != attacker]
    assert byzantine["honest_mean"] == pytest.approx(sum(attacked[p] for p in honest) / 5)
    assert attacked != clean, "the attacker changed nothing"
    clean_mean = sum(clean[p] for p in honest) / len(honest)
    assert clean_mean > 0.6, clean  # it learned (chance is 0.1)
    assert byzantine["honest_mean"] > clean_mean - 0.05, (clean, attacked)
