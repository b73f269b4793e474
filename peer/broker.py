"""A Mosquitto broker that rumor starts itself, on a loopback port, for tests and ``rumor up``.

::

    with Broker.start_sync(log_dir=tmp) as broker:        # pytest fixtures, the launcher
        connect(broker.host, broker.port)
    async with Broker.start(max_packet_size=4096, log_dir=tmp) as broker:
        broker.restart()                                   # same port: the broker-outage test

The broker listens on 127.0.0.1 only and allows anonymous clients: it is a local tool, not a
deployment; with ``secure=DIR`` (a ``rumor secure`` directory) it listens with TLS, requires a
client certificate of that swarm and applies its ACL instead. Its configuration file and log live
in ``log_dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from protocol.chunking import MQTT_MAX_PACKET
from protocol.errors import ConfigError, RumorError

__all__ = ["Broker", "BrokerError", "MosquittoNotFoundError", "find_mosquitto", "free_port"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_FALLBACK_BINARY = Path("/usr/sbin/mosquitto")
_LOG_TAIL_LINES = 20


class MosquittoNotFoundError(ConfigError):
    """The ``mosquitto`` binary is neither on PATH nor in /usr/sbin."""


class BrokerError(RumorError):
    """The broker process failed to start or to listen in time."""


def find_mosquitto() -> Path:
    """Locate the mosquitto binary: PATH first, then /usr/sbin (Debian puts it there)."""
    found = shutil.which("mosquitto")
    if found is not None:
        return Path(found)
    if _FALLBACK_BINARY.is_file():
        return _FALLBACK_BINARY
    raise MosquittoNotFoundError(
        "mosquitto not found on PATH nor at /usr/sbin/mosquitto; "
        "install it: apt-get install mosquitto"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _config_text(
    port: int, max_packet_size: int | None, persistence: Path | None, secure: Path | None = None
) -> str:
    if secure is None:
        lines = [f"listener {port} {HOST}", "allow_anonymous true"]
    else:
        from peer.security.mosquitto import mosquitto_conf

        lines = mosquitto_conf(secure.resolve(), port, bind=HOST).splitlines()
        lines = [line for line in lines if not line.startswith("max_packet_size")]
        if os.geteuid() == 0:
            # Started as root, mosquitto would drop to its own user, which cannot read the
            # 0600 server key: this local broker keeps the user that owns the key.
            lines.append("user root")
    lines += [
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    if max_packet_size is not None:
        lines.append(f"max_packet_size {max_packet_size}")
    if persistence is None:
        lines.append("persistence false")
    else:
        lines += ["persistence true", f"persistence_location {persistence}/"]
    return "\n".join(lines) + "\n"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """One mosquitto process on ``127.0.0.1:port``; ``stop`` and ``restart`` keep the port."""

    def __init__(
        self,
        *,
        port: int | None = None,
        max_packet_size: int | None = None,
        persistence: bool = False,
        log_dir: Path,
        binary: Path | None = None,
        start_timeout_s: float = 10.0,
        secure: Path | None = None,
    ) -> None:
        """``secure``: a ``rumor secure`` swarm directory; the broker then listens with TLS,
        requires client certificates of that swarm and applies its ACL (``broker/``)."""
        if max_packet_size is not None and not 20 <= max_packet_size <= MQTT_MAX_PACKET:
            raise ConfigError(
                f"max_packet_size={max_packet_size}: expected 20 to 268435455 bytes (MQTT limit)"
            )
        self.host = HOST
        self.port = free_port() if port is None else port
        self.max_packet_size = max_packet_size
        self.log_dir = Path(log_dir)
        self._binary = binary if binary is not None else find_mosquitto()
        self._persistence = persistence
        self._start_timeout_s = start_timeout_s
        self.secure = secure
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port``, as ``rumor`` options take it."""
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "mosquitto.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @classmethod
    @contextlib.contextmanager
    def start_sync(
        cls,
        *,
        port: int | None = None,
        max_packet_size: int | None = None,
        persistence: bool = False,
        log_dir: Path,
    ) -> Iterator[Broker]:
        """Run a broker for the duration of a ``with`` block (blocking start and stop)."""
        broker = cls(
            port=port, max_packet_size=max_packet_size, persistence=persistence, log_dir=log_dir
        )
        broker.launch()
        try:
            yield broker
        finally:
            broker.stop()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        port: int | None = None,
        max_packet_size: int | None = None,
        persistence: bool = False,
        log_dir: Path,
    ) -> AsyncIterator[Broker]:
        """Run a broker for the duration of an ``async with`` block; start and stop off the loop."""
        broker = cls(
            port=port, max_packet_size=max_packet_size, persistence=persistence, log_dir=log_dir
        )
        await asyncio.to_thread(broker.launch)
        try:
            yield broker
        finally:
            await asyncio.to_thread(broker.stop)

    def launch(self) -> None:
        """Start mosquitto and return once its port accepts connections."""
        if self.running:
            raise BrokerError(f"broker on port {self.port} is already running")
        if _port_open(self.port):
            raise BrokerError(f"port {self.port} on {HOST} is already in use; expected a free port")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conf = self.log_dir / "mosquitto.conf"
        store = self.log_dir if self._persistence else None
        conf.write_text(_config_text(self.port, self.max_packet_size, store, self.secure))
        with self.log_file.open("ab") as log_stream:
            self._process = subprocess.Popen(
                [str(self._binary), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log_stream,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches whoever started it, which
                # stops the peers (they say offline through this broker) before the broker.
                start_new_session=True,
            )
        self._wait_listening()
        log.info("mosquitto pid %d listening on %s", self._process.pid, self.address)

    def _wait_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout_s
        while not _port_open(self.port):
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise BrokerError(
                    f"mosquitto exited with status {code} before listening on port {self.port}; "
                    f"log tail:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(
                    f"mosquitto did not listen on port {self.port} within "
                    f"{self._start_timeout_s} s; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, *, grace_s: float = 5.0) -> None:
        """Terminate the process and wait for it; kill it if it outlives ``grace_s``."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("mosquitto pid %d ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()
        log.info("mosquitto on port %d stopped (status %s)", self.port, process.returncode)

    def kill(self) -> None:
        """SIGKILL the process without waiting (safe in a signal handler); :meth:`stop` reaps it."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def restart(self) -> None:
        """Stop and start again on the same port (clients see an outage and must reconnect)."""
        self.stop()
        self.launch()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of mosquitto's log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
