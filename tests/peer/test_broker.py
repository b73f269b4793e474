"""The Mosquitto we start ourselves: found, started on a free port, stopped, restarted."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import peer.broker
from peer.broker import Broker, BrokerError, MosquittoNotFoundError, find_mosquitto, free_port
from protocol.errors import ConfigError


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_find_mosquitto_falls_back_to_usr_sbin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No Mosquitto needed: the fallback location is checked with a stand-in binary.
    assert Path("/usr/sbin/mosquitto") == peer.broker._FALLBACK_BINARY
    stand_in = tmp_path / "mosquitto"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(peer.broker, "_FALLBACK_BINARY", stand_in)
    assert find_mosquitto() == stand_in


def test_find_mosquitto_prefers_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    on_path = tmp_path / "mosquitto"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(peer.broker, "_FALLBACK_BINARY", tmp_path / "none")
    assert find_mosquitto() == on_path


@pytest.mark.broker
def test_the_installed_mosquitto_is_found_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert find_mosquitto() == Path("/usr/sbin/mosquitto")


def test_missing_mosquitto_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(peer.broker, "_FALLBACK_BINARY", tmp_path / "none")
    with pytest.raises(MosquittoNotFoundError, match="apt-get install mosquitto") as info:
        find_mosquitto()
    assert isinstance(info.value, ConfigError)  # the CLI exits 2 on it


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.broker
def test_start_stop_restart_on_the_same_port(tmp_path: Path) -> None:
    with Broker.start_sync(log_dir=tmp_path, max_packet_size=4096) as broker:
        port = broker.port
        assert accepts(port)
        conf = (tmp_path / "mosquitto.conf").read_text()
        assert f"listener {port} 127.0.0.1" in conf
        assert "max_packet_size 4096" in conf
        assert "persistence false" in conf
        broker.stop()
        assert not broker.running
        assert not accepts(port)
        broker.restart()
        assert broker.port == port
        assert accepts(port)
    assert not accepts(port)
    assert "mosquitto version" in broker.log_tail()


@pytest.mark.broker
async def test_async_variant_and_persistence(tmp_path: Path) -> None:
    async with Broker.start(log_dir=tmp_path, persistence=True) as broker:
        assert accepts(broker.port)
        assert f"persistence_location {tmp_path}/" in (tmp_path / "mosquitto.conf").read_text()
    assert not broker.running


@pytest.mark.broker
def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with (
        Broker.start_sync(log_dir=tmp_path / "a") as first,
        pytest.raises(BrokerError, match=f"port {first.port} .* already in use"),
    ):
        Broker(port=first.port, log_dir=tmp_path / "b").launch()


def test_a_broker_that_dies_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-mosquitto"
    fake.write_text("#!/bin/sh\necho 'Error: Unable to open config' >&2\nexit 3\n")
    fake.chmod(0o755)
    broker = Broker(log_dir=tmp_path, binary=fake)
    with pytest.raises(BrokerError, match=r"status 3 .*\n.*Unable to open config"):
        broker.launch()
    assert not broker.running


def test_a_broker_that_never_listens_times_out_and_is_killed(tmp_path: Path) -> None:
    fake = tmp_path / "silent-mosquitto"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    broker = Broker(log_dir=tmp_path, binary=fake, start_timeout_s=0.3)
    with pytest.raises(BrokerError, match=r"did not listen .* within 0\.3 s"):
        broker.launch()
    assert not broker.running


def test_packet_limit_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_packet_size=10"):
        Broker(log_dir=Path("/nonexistent"), max_packet_size=10, binary=Path("/bin/true"))
