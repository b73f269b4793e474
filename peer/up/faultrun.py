"""The part of ``rumor up``'s failures that happens outside the peers: kills, restarts, gates,
and the broker outage; and ``failures.json``, the schedule as it was actually applied.

A peer that must crash before round R holds there (its fault plan) and touches a hold file; the
driver SIGKILLs its process group at once and records the swarm's round. Before a recovery round
R every peer that is up at R waits at the gate of R; once all of them are there the driver
restarts the recovering peers (``resume_at`` R, from their checkpoints), and when those are at the
gate too it opens it. The broker outage follows the slowest running peer's round, read from the
stats files (the broker, and so telemetry, is down meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from peer.broker import Broker
from peer.faults.plan import GATE_OPEN, LINKED, gate_path, hold_path
from peer.up.failures import UpFailures, outage_rounds
from peer.up.procs import PeerProcess
from peer.up.report import last_stats
from protocol.failures import Crash
from protocol.topics import peer_name

__all__ = ["FaultDriver", "Relauncher"]

log = logging.getLogger(__name__)

_POLL_S = 0.05

Relauncher = Callable[[int, int], PeerProcess]
"""(peer index, resume round) -> the restarted peer process."""


@dataclass(kw_only=True)
class FaultDriver:
    failures: UpFailures
    periods: list[Crash]
    peers: list[PeerProcess]
    """The launcher's list: restarted processes replace their predecessors in it."""
    gate_dir: Path
    record: Path
    relaunch: Relauncher
    broker: Broker | None
    seed: int
    events: list[dict[str, object]] = field(default_factory=list)
    down_for_good: set[str] = field(default_factory=set)
    """Peers killed with no recovery: their SIGKILL exit is the plan, not a failure."""
    _killed: set[tuple[str, int]] = field(default_factory=set)
    _restarted: set[tuple[str, int]] = field(default_factory=set)
    _start: float = field(default_factory=time.monotonic)
    _outage_state: str = "before"

    async def run(self) -> None:
        """Drive the plan until cancelled (the launcher cancels it when the peers are done)."""
        self._write()
        while True:
            try:
                await self._step()
            except Exception:
                # the plan must not die unseen: log, and try again at the next poll
                log.exception("rumor up: the failure driver failed a step")
            await asyncio.sleep(_POLL_S)

    async def _step(self) -> None:
        self._kill_holders()
        await asyncio.to_thread(self._gates)  # stopping or starting the broker takes a moment

    def swarm_round(self, *, slowest: bool = False) -> int:
        """Rounds completed by the running peers (the fastest, or the slowest)."""
        rounds = [
            r
            for p in self.peers
            if p.running and type(r := last_stats(p.stats).get("round")) is int
        ]
        if not rounds:
            return 0
        return min(rounds) if slowest else max(rounds)

    def _kill_holders(self) -> None:
        for crash in self.periods:
            name = peer_name(crash.peer)
            if (name, crash.at) in self._killed:
                continue
            if not hold_path(self.gate_dir, crash.at, name).exists():
                continue
            peer = self.peers[crash.peer]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(peer.process.pid, signal.SIGKILL)
            peer.process.wait()
            self._killed.add((name, crash.at))
            if crash.recover is None:
                self.down_for_good.add(name)
            self._event("crash", peer=name, round=crash.at, swarm_round=self.swarm_round())

    def _gates(self) -> None:
        """Open the gates in round order, once every running peer is there with its link up:
        the recovering peers restarted as soon as the others are there, the broker stopped at
        an outage's first round, started at its last as soon as every peer is there."""
        recoveries = {c.recover for c in self.periods if c.recover is not None}
        for r in sorted(recoveries | outage_rounds(self.failures)):
            gate = gate_path(self.gate_dir, r)
            if (gate / GATE_OPEN).exists():
                continue
            back = [c.peer for c in self.periods if c.recover == r]
            there = set(os.listdir(gate)) if gate.is_dir() else set()
            waiting = [p for j, p in enumerate(self.peers) if p.running and j not in back]
            if not all(p.name in there for p in waiting):
                return  # an earlier gate first: later ones wait for it (with nobody up, go on)
            for j in back:
                if (peer_name(j), r) not in self._restarted:
                    self._restarted.add((peer_name(j), r))
                    self.peers[j] = self.relaunch(j, r)
                    self._event("restart", peer=peer_name(j), round=r)
            if self.failures.outage is not None and r == self.failures.outage[1]:
                self._broker("start", r)
            linked = {name.removesuffix(LINKED) for name in there if name.endswith(LINKED)}
            expected = [p.name for p in waiting] + [peer_name(j) for j in back]
            if all(name in linked for name in expected):
                if self.failures.outage is not None and r == self.failures.outage[0]:
                    self._broker("stop", r)
                (gate / GATE_OPEN).touch()
                self._event("gate_open", round=r)
            return

    @property
    def pending(self) -> bool:
        """Whether a down peer is still to be restarted (the run is not over even if no peer
        is running now: every peer may be down at once)."""
        return any(
            (peer_name(c.peer), c.recover) not in self._restarted
            for c in self.periods
            if c.recover is not None
        )

    def _broker(self, action: str, round: int) -> None:
        """Stop the broker (once) or start it again (once, after a stop)."""
        broker = self.broker
        if broker is None:
            return
        if action == "stop" and self._outage_state == "before":
            broker.stop()
            self._outage_state = "down"
            self._event("broker_stop", round=round)
        elif action == "start" and self._outage_state == "down":
            broker.launch()
            self._outage_state = "after"
            self._event("broker_start", round=round)

    def finish(self) -> None:
        """The broker up again if the run ended inside the outage; the record written."""
        if self._outage_state == "down" and self.broker is not None:
            self.broker.launch()
            self._outage_state = "after"
            self._event("broker_start", round=self.swarm_round(slowest=True))
        self._write()

    def _event(self, kind: str, **fields: object) -> None:
        event = {"event": kind, "t_s": round(time.monotonic() - self._start, 3), **fields}
        log.warning("rumor up: failure %s", " ".join(f"{k}={v}" for k, v in event.items()))
        self.events.append(event)
        self._write()

    def _write(self) -> None:
        crashes = [
            {"peer": peer_name(c.peer), "index": c.peer, "at": c.at, "recover": c.recover}
            for c in self.periods
        ]
        data = {
            "seed": self.seed,
            "sim_flags": self.failures.sim_flags(),
            "down_periods": crashes,
            "outage": self.failures.outage,
            "slow_ms": {peer_name(j): ms for j, ms in self.failures.slow.items()},
            "events": self.events,
        }
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.record)
