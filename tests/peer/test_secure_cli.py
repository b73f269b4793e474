"""``rumor secure``: the documented commands work, and misuse is a one-line error (exit 2)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from peer.cli import main
from peer.config import load_config
from peer.security.credentials import load_trust

README = Path(__file__).parents[2] / "README.md"


def _documented() -> list[list[str]]:
    lines = [line.split("#")[0].strip() for line in README.read_text().splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("rumor secure ")]


def test_every_documented_rumor_secure_command_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    commands = _documented()
    assert len(commands) >= 4
    inits = [c for c in commands if c[1] == "init"]
    for argv in inits[1:]:  # each init in its own directory
        argv[2] = "other"
        assert main(argv) == 0
    for argv in [inits[0], *(c for c in commands if c[1] != "init")]:
        assert main(argv) == 0, argv
    config = load_config(tmp_path / "swarm" / "peers" / "p4" / "peer.toml")
    assert config.broker.tls_cert is not None
    assert config.security.required
    trust = load_trust(tmp_path / "swarm" / "trust.toml", required=True)
    assert trust.peers == {"p0", "p1", "p3", "p4"}, "p2 revoked, p4 added"
    assert "user p2" not in (tmp_path / "swarm" / "broker" / "acl").read_text()
    named = load_config(tmp_path / "other" / "peers" / "garage" / "peer.toml")
    assert named.topology.membership


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--peers", "a,b", "--topology", "ring"], "named peers need --topology membership"),
        (["--peers", "6", "--topology", "torus"], "--topology torus"),
        (["--peers", "a/b"], "peer id"),
        (["--peers", "watch,p1"], "reserved for the read-only watch identity"),
        (["--peers", "3", "--broker-port", "0"], "--broker-port 0"),
    ],
)
def test_bad_init_arguments_exit_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["secure", "init", str(tmp_path / "s"), "--swarm", "lab", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s" / "ca.key").exists()


def test_init_never_overwrites_a_swarm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["secure", "init", str(tmp_path), "--swarm", "lab", "--peers", "2"]
    assert main(argv) == 0
    key = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "ca.key").read_bytes() == key
