"""``rumor up``'s settings: per-peer configs, and validation before anything is launched."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest

from peer import cli
from peer.commands import _UP_EXAMPLES, register
from peer.config import BrokerConfig
from peer.up.settings import (
    BROKER_MAX_PACKET,
    UpConfig,
    peer_configs,
    threads_per_peer,
    up_config,
    validate_swarm,
)
from protocol.topics import peer_name
from sim import traffic
from tests.peer.up_helpers import up_refusal


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--peers", "6", "--topology", "torus"], "topology.family: torus: n = 6 is not a perfect"),
        (["--topology", "hypercube", "--peers", "6"], "hypercube: n = 6 is not a power of two"),
        (["--codec", "bogus"], "gossip.codec: unknown codec 'bogus'"),
        (
            ["--topology", "exponential:directed=true"],
            "topology.family: 'exponential:directed=true' builds a directed graph",
        ),
        (["--task", "fmnistt"], "learning.task: unknown task 'fmnistt'"),
        (["--model", "rnn"], "learning.model: unknown model 'rnn'"),
        (["--partition", "dirichlet:beta=1"], "learning.partition: dirichlet: unknown parameter"),
        (["--set", "gossip.codec=topk:fraction=3"], "gossip.codec: topk: fraction=3 out of range"),
    ],
)
def test_up_refuses_a_bad_swarm_before_launching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    err = up_refusal(tmp_path, capsys, argv)
    assert err.startswith("rumor up: error: no peer started: "), err
    assert message in err


_README = Path(__file__).parents[2] / "README.md"


def _documented_up_commands() -> list[str]:
    readme = _README.read_text().replace("\\\n", " ")  # continuation lines joined
    lines = [*readme.splitlines(), *_UP_EXAMPLES.splitlines()]
    return [line.split("#")[0].strip() for line in lines if line.strip().startswith("rumor up ")]


def test_every_documented_rumor_up_command_is_a_valid_swarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's own plug-in module, importable as it is where its commands run.
    module = re.search(r"```python\n(# mysensors\.py\n.*?)```", _README.read_text(), re.DOTALL)
    assert module is not None
    (tmp_path / "mysensors.py").write_text(module.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    commands = _documented_up_commands()
    assert len(commands) >= 4
    try:
        for command in commands:
            validate_swarm(_up(tmp_path, *shlex.split(command)[2:]))
    finally:
        sys.modules.pop("mysensors", None)


def test_up_gives_each_peer_its_share_of_the_cores(tmp_path: Path) -> None:
    def threads(*argv: str) -> set[int]:
        configs = peer_configs(_up(tmp_path, *argv), host="127.0.0.1", port=1883)
        return {c.learning.threads for c in configs}

    assert threads("--peers", "4") == {threads_per_peer(4)}
    assert threads("--peers", "4", "--threads", "3") == {3}
    assert threads("--peers", "4", "--threads", "0") == {0}  # torch's default
    assert threads_per_peer(8, cpus=2) == 1
    assert threads_per_peer(3, cpus=16) == 5


def test_up_refuses_a_negative_thread_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["up", "--out", str(tmp_path / "run"), "--threads", "-1"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--threads -1: expected 0 (torch's default) or more" in err
    assert len(err.splitlines()) == 1


def test_peers_chunk_to_fit_the_broker_up_starts_and_no_more(tmp_path: Path) -> None:
    """rumor up's own broker takes 1 MiB packets: 4 chunks for a 4 MB frame, not 33. With
    --broker nothing is known of the broker: the 124 KiB default, which fits AWS IoT Core."""
    own = peer_configs(_up(tmp_path, "--peers", "2"), host="127.0.0.1", port=1883)
    assert {c.broker.max_payload for c in own} == {BROKER_MAX_PACKET - 512}
    given = _up(tmp_path, "--peers", "2", "--max-packet-size", "4096")
    assert {c.broker.max_payload for c in peer_configs(given, host="h", port=1)} == {4096 - 512}
    external = _up(tmp_path, "--peers", "2", "--broker", "127.0.0.1:1883")
    default = BrokerConfig().max_payload
    assert {c.broker.max_payload for c in peer_configs(external, host="h", port=1)} == {default}
    overridden = _up(tmp_path, "--peers", "2", "--set", "broker.max_payload=126976")
    assert {c.broker.max_payload for c in peer_configs(overridden, host="h", port=1)} == {126976}
