"""``rumor up --dp``: every peer gets [privacy] (without a seed), bad values stop it before
launch, and the final table and summary.json carry each peer's epsilon."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from peer import cli
from peer.broker import Broker
from peer.commands import register
from peer.up.report import render_table
from peer.up.settings import UpConfig, peer_configs, up_config
from protocol.privacy_accounting import epsilon
from protocol.privacy_params import DpParams


def _up(tmp_path: Path, *argv: str) -> UpConfig:
    parser = argparse.ArgumentParser(prog="rumor")
    register(parser.add_subparsers(dest="command", required=True))
    return up_config(parser.parse_args(["up", "--out", str(tmp_path), *argv]))


def test_dp_reaches_every_peer_without_a_seed(tmp_path: Path) -> None:
    up = _up(tmp_path, "--peers", "3", "--dp", "sigma=2,clip=0.5")
    for config in peer_configs(up, host="127.0.0.1", port=1883):
        assert config.privacy.params == DpParams(clip=0.5, sigma=2.0)
        assert config.privacy.seed is None  # each daemon draws a secret one
    plain = peer_configs(_up(tmp_path, "--peers", "3"), host="127.0.0.1", port=1883)
    assert all(c.privacy.params is None for c in plain)


def test_a_bad_dp_stops_up_before_launch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        cli.main(["up", "--out", str(out), "--dp", "clip=1,sigma=0"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--dp: sigma = 0.0: expected a finite number > 0" in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_the_table_shows_epsilon_only_with_dp() -> None:
    row = {"peer": "p0", "accuracy": 0.5, "rounds": 3, "bytes_sent": 9, "rejected": 0}
    assert "dp_epsilon" not in render_table([row | {"dp_epsilon": None}])
    table = render_table([row | {"dp_epsilon": 12.5}, row | {"dp_epsilon": 4012.0}])
    assert "dp_epsilon" in table.splitlines()[0]
    assert "12.5000" in table
    assert "4012" in table


@pytest.mark.broker
@pytest.mark.slow
def test_up_with_dp_reports_each_peers_epsilon(broker: Broker, tmp_path: Path) -> None:
    argv = ["up", "--peers", "3", "--rounds", "3", "--broker", broker.address]
    argv += ["--model", "mlp:hidden=16", "--dp", "clip=1,sigma=4,delta=1e-6", "--insecure"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["privacy"] == {"clip": 1.0, "sigma": 4.0, "delta": 1e-6}
    want = epsilon(3, sigma=4.0, delta=1e-6)
    assert [p["dp_epsilon"] for p in summary["peers"]] == [want] * 3


def test_watch_shows_epsilon_and_a_dash_without_dp() -> None:
    from peer.watch import SwarmView

    view = SwarmView(prefix="rumor", swarm="lab")
    view.update("rumor/lab/telemetry/p1", b'{"round": 3, "dp_epsilon": 4012.33}')
    view.update("rumor/lab/telemetry/p2", b'{"round": 3}')
    header, p1, p2 = view.table().splitlines()
    assert header.split()[-1] == "epsilon"
    assert p1.split()[-1] == "4012"
    assert p2.split()[-1] == "-"
