"""A simulated swarm's round and a daemon's round are different records, but a fact they share
has one name: ``train_loss`` is the training loss in both, ``test_loss`` the simulator's test loss,
and neither has an ambiguous ``loss``."""

from __future__ import annotations

import json

from peer.runtime import RoundStats
from peer.runtime.stats import to_json
from sim.metrics import SwarmRoundStats


def test_rounds_jsonl_and_telemetry_name_the_training_loss_alike() -> None:
    swarm = SwarmRoundStats(
        round=1,
        evaluated=True,
        test_loss=0.7,
        train_loss=0.5,
        consensus_distance=0.1,
        bytes_sent=1,
        bytes_delivered=2,
        alive=3,
        stale_pairs=0,
        wall_s=0.0,
    ).to_json()
    telemetry = json.loads(
        to_json(
            RoundStats(
                round=1,
                train_loss=0.5,
                accuracy=0.9,
                neighbours=2,
                alive=2,
                received=2,
                bytes_out=1,
                bytes_in=2,
            ),
            peer="p0",
            swarm="lab",
        )
    )
    assert swarm["train_loss"] == telemetry["train_loss"] == 0.5
    assert swarm["test_loss"] == 0.7
    assert "loss" not in swarm
    assert "loss" not in telemetry
