"""The peer processes of ``rumor up``: launched in their own process groups, stopped for sure.

Each peer runs ``python -m peer peer --config ...`` (the ``rumor peer`` command, with this
interpreter) in a new session, so that stopping its process group also stops anything it started.
Stopping sends SIGTERM (the peer finishes its round, checkpoints and says ``offline``), waits,
then SIGKILLs whatever is left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from peer.stopping import STOP_SIGNALS

__all__ = ["PeerProcess", "kill_all", "launch", "stop_all"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True, eq=False)
class PeerProcess:
    name: str
    process: subprocess.Popen[bytes]
    config: Path
    stats: Path
    log: Path

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def launch(
    name: str,
    config: Path,
    directory: Path,
    *,
    log_level: str = "INFO",
    extra: Sequence[str] = (),
) -> PeerProcess:
    """Start one peer process writing its log and stats into ``directory``; ``extra``: more
    ``rumor peer`` arguments (``--attack SPEC``)."""
    stats, logfile = directory / "stats.jsonl", directory / "peer.log"
    stats.unlink(missing_ok=True)
    env = dict(os.environ)  # each peer's torch threads: learning.threads in its config
    command = [
        sys.executable,
        "-m",
        "peer",
        "--log-level",
        log_level,
        "peer",
        "--config",
        str(config),
        "--stats-file",
        str(stats),
        *extra,
    ]
    # Blocked across the exec: a stop that comes before the peer has installed its handlers
    # waits for them (peer.stopping) instead of killing it with no offline and no checkpoint.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    with logfile.open("ab") as out:
        try:
            process = _spawn(command, out, env)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    log.debug("started %s as pid %d", name, process.pid)
    return PeerProcess(name=name, process=process, config=config, stats=stats, log=logfile)


def _spawn(command: list[str], out: IO[bytes], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )


def _signal_group(peer: PeerProcess, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(peer.process.pid, sig)


def kill_all(peers: list[PeerProcess]) -> None:
    """SIGKILL every running peer's group now, without waiting (safe in a signal handler)."""
    for peer in peers:
        if peer.process.returncode is None:
            _signal_group(peer, signal.SIGKILL)


def stop_all(peers: list[PeerProcess], *, grace_s: float = 20.0) -> None:
    """SIGTERM every running peer's group, wait up to ``grace_s``, then SIGKILL the rest."""
    for peer in peers:
        if peer.running:
            _signal_group(peer, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for peer in peers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            peer.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for peer in peers:
        if peer.running:
            log.warning("%s ignored SIGTERM for %.0f s; killing it", peer.name, grace_s)
            _signal_group(peer, signal.SIGKILL)
            peer.process.wait()
