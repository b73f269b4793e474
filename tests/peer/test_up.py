"""``rumor up``'s settings: per-peer configs, and validation before anything is launched."""

from __future__ import annotations

import argparse
from pathlib import Path

from peer.commands import register
from peer.up.settings import UpConfig, peer_configs, up_config
from protocol.topics import peer_name
from sim import traffic


def _up(tmp_path: Path, *argv: str) -> UpConfig:
    parser = argparse.ArgumentParser(prog="rumor")
    register(parser.add_subparsers(dest="command", required=True))
    return up_config(parser.parse_args(["up", "--out", str(tmp_path), *argv]))


def test_up_names_peers_as_the_simulator_does(tmp_path: Path) -> None:
    configs = peer_configs(_up(tmp_path, "--peers", "12"), host="127.0.0.1", port=1883)
    names = [c.identity.peer for c in configs]
    assert names == [f"p{j}" for j in range(12)]
    assert names == [peer_name(j) for j in range(12)]
    assert traffic.peer_name is peer_name  # one naming function for daemons and simulator
