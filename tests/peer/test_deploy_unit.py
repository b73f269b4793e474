"""``deploy/rumor-peer.service``: its content, ``systemd-analyze verify`` where systemd is
installed, and that the stop it sends is the clean stop of ``rumor peer``."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path, PurePosixPath

import pytest

from peer.cli import EXIT_OK, EXIT_USAGE
from peer.fleet.write import CHECKPOINTS
from peer.stopping import STOP_SIGNALS

UNIT = Path(__file__).parents[2] / "deploy" / "rumor-peer.service"
WRITABLE = {"/var/lib/rumor", "/var/log/rumor"}


def _unit() -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key].append(value)
    return sections


def _one(key: str) -> str:
    values = _unit()["Service"][key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def test_the_unit_runs_rumor_peer_hardened_as_its_own_user() -> None:
    assert _one("ExecStart").split()[1:] == ["peer", "--config", "/etc/rumor/peer.toml"]
    assert _one("User") not in ("", "root")
    assert _one("Restart") == "on-failure"
    assert _one("ProtectSystem") == "strict"
    assert _one("NoNewPrivileges") == "yes"
    assert _one("MemoryMax").endswith(("M", "G"))
    assert _one("StandardError") == "journal"
    assert set(_one("ReadWritePaths").split()) == WRITABLE
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_default_checkpoints_are_in_a_writable_path() -> None:
    checkpoints = PurePosixPath(CHECKPOINTS)
    assert any(checkpoints.is_relative_to(w) for w in WRITABLE)


def test_stop_semantics_match_the_peer() -> None:
    # The peer stops cleanly on KillSignal (peer.stopping) and exits 0, which Restart=on-failure
    # takes as a wanted stop; a bad config exits 2, which the unit never restarts.
    assert signal.Signals[_one("KillSignal")] in STOP_SIGNALS
    assert _one("KillMode") in ("mixed", "control-group")
    assert str(EXIT_USAGE) in _one("RestartPreventExitStatus").split()
    assert int(_one("TimeoutStopSec")) >= 60


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "systemd-analyze is not installed (apt-get install systemd); the unit's "
            "content is checked by the other tests of this file"
        )
    # verify wants ExecStart's program to exist: point it at this environment's rumor.
    rumor = Path(sys.executable).parent / "rumor"
    unit = tmp_path / "rumor-peer.service"
    unit.write_text(UNIT.read_text().replace("/opt/rumor/venv/bin/rumor", str(rumor)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    # verify exits 0 on unknown keys and bad values too, with a warning: none is accepted.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.slow
def test_the_units_kill_signal_ends_the_peer_with_status_0(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "peer.toml"
    config.write_text(
        '[identity]\npeer = "p1"\n[topology]\nfamily = "ring"\nsize = 3\nnode = 1\n'
        f'[learning]\ntask = "consensus"\n[broker]\nport = {port}\nconnect_timeout_s = 300.0\n'
    )
    _program, *args = _one("ExecStart").split()  # this environment's rumor instead
    args[args.index("--config") + 1] = str(config)
    log = tmp_path / "peer.log"
    with log.open("w") as out:
        peer = subprocess.Popen([sys.executable, "-m", "peer", *args], stderr=out, stdout=out)
    try:
        deadline = time.monotonic() + 120
        while "connecting to" not in log.read_text():
            assert peer.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        peer.send_signal(signal.Signals[_one("KillSignal")])
        assert peer.wait(timeout=120) == EXIT_OK, log.read_text()
    finally:
        peer.kill()
        peer.wait()
    assert "stopped cleanly" in log.read_text()
