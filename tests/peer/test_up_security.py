"""``rumor up`` signs by default, runs TLS with ``--secure``, and neither with ``--insecure``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from peer.cli import main
from peer.commands import register
from peer.config import load_config
from peer.up.material import prepare
from peer.up.settings import UpConfig, peer_configs, up_config
from protocol.errors import ConfigError


def _up(tmp_path: Path, *argv: str) -> UpConfig:
    parser = argparse.ArgumentParser(prog="rumor")
    register(parser.add_subparsers(dest="command", required=True))
    return up_config(parser.parse_args(["up", "--out", str(tmp_path), *argv]))


def test_signatures_are_on_by_default_and_keys_are_kept(tmp_path: Path) -> None:
    up = _up(tmp_path, "--peers", "3")
    assert up.security == "signed"
    _, sections = prepare(up.out, up.peers, up.swarm, up.security)
    configs = peer_configs(up, host="127.0.0.1", port=1883, sections=sections)
    for config in configs:
        assert config.security.required
        assert config.security.signing_key is not None
        assert os.stat(config.security.signing_key).st_mode & 0o777 == 0o600
        assert config.broker.tls_ca is None
    key = (tmp_path / "keys" / "p0.key").read_bytes()
    prepare(up.out, up.peers, up.swarm, up.security)  # a second run in the same --out
    assert (tmp_path / "keys" / "p0.key").read_bytes() == key, "never overwritten"


def test_insecure_turns_signatures_off(tmp_path: Path) -> None:
    up = _up(tmp_path, "--peers", "2", "--insecure")
    _, sections = prepare(up.out, up.peers, up.swarm, up.security)
    configs = peer_configs(up, host="127.0.0.1", port=1883, sections=sections)
    assert all(not c.security.required and c.security.signing_key is None for c in configs)


def test_secure_and_insecure_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        _up(tmp_path, "--secure", "--insecure")


def test_secure_refuses_an_external_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--secure starts its own TLS broker"):
        _up(tmp_path, "--secure", "--broker", "broker.lan:1883")


@pytest.mark.broker
@pytest.mark.slow
def test_a_secure_swarm_runs_over_tls_with_signatures(tmp_path: Path) -> None:
    argv = ["up", "--peers", "3", "--rounds", "3", "--task", "consensus", "--out", str(tmp_path)]
    assert main([*argv, "--secure"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [p["rounds"] for p in summary["peers"]] == [3, 3, 3]
    assert all(p["rejected"] == 0 for p in summary["peers"])
    config = load_config(tmp_path / "p0" / "peer.toml")
    assert config.broker.tls_cert is not None
    assert config.security.required
    conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert "require_certificate true" in conf
    assert "allow_anonymous false" in conf
    # Peers that start later get the earlier ones' retained keyframes: frames came through TLS,
    # and (nothing rejected) every one was signed and verified.
    received = [
        json.loads(line)["received"]
        for p in ("p0", "p1", "p2")
        for line in (tmp_path / p / "stats.jsonl").read_text().splitlines()
    ]
    assert sum(received) > 0
