"""What a fault plan does inside one peer: lose received frames, hold, resume, wait at gates.

The runtime calls four hooks, each a no-op without ``rumor peer --faults``:
:meth:`Faults.admit` on every received message (False: it is lost before the peer sees it),
:meth:`Faults.resume` after the checkpoint is restored, :meth:`Faults.before_round` at the top of
every round, and :meth:`Faults.before_publish` before every frame it publishes (not before
telemetry or presence).

A lost frame is a frame the peer never saw: its copy of the sender goes stale until the sender's
next keyframe, as in the simulator. The sync barrier is told not to wait for it
(:attr:`Inbound.excused <peer.runtime.inbound.Inbound.excused>`), since in the simulator a lost
message costs no time either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

from peer.faults.plan import GATE_OPEN, LINKED, FaultPlan, gate_path, hold_path
from peer.runtime.gossip import first_of
from peer.transport import Message
from peer.transport.base import ConnectionState
from protocol.envelope import decode_envelope
from protocol.errors import ProtocolError
from protocol.failure_schedule import link_lost, partition_cut
from protocol.topics import parse_topic
from protocol.types import PeerId

if TYPE_CHECKING:
    from peer.runtime.inbound import Inbound

__all__ = ["Faults"]

log = logging.getLogger(__name__)

_POLL_S = 0.02
_GATE_LIMIT_S = 600.0
"""A gate nobody opens (its launcher gone) lets the peer through after this long."""


class Faults:
    """One peer's fault plan, applied through the runtime's hooks."""

    def __init__(
        self,
        plan: FaultPlan,
        *,
        me: PeerId,
        prefix: str,
        max_bytes: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``sleep``: how a slow link waits (tests pass a fake clock)."""
        if me not in plan.index:
            raise ValueError(f"the fault plan has no index for {me!r}")
        self.plan, self.me, self.prefix, self.max_bytes = plan, me, prefix, max_bytes
        self._sleep = sleep
        self.mine = plan.index[me]
        self.lost = 0
        """Frames lost by the plan so far."""

    def admit(self, message: Message, inbound: Inbound) -> bool:
        """False when the plan loses this frame; the barrier is then excused from waiting."""
        if not self.plan.lossy:
            return True
        try:
            kind, _, sender = parse_topic(message.topic, prefix=self.prefix)
            if kind not in ("key", "delta") or sender not in self.plan.index:
                return True
            round = decode_envelope(message.payload, max_bytes=self.max_bytes).round
        except ProtocolError:
            return True  # the inbound path rejects it and counts why
        src = self.plan.index[sender]
        # Whatever becomes of it (a delta on a copy gone stale is refused), the sender did send
        # its frame of this round: in the simulator nobody waits for it either.
        inbound.excused[sender] = max(round, inbound.excused.get(sender, -1))
        if self._lost(src, round):
            self.lost += 1
            log.debug("%s: fault plan loses %s's frame of round %d", self.me, sender, round)
            return False
        return True

    def _lost(self, src: int, round: int) -> bool:
        plan = self.plan
        if plan.drop > 0 and bool(
            link_lost(plan.drop, [src], [self.mine], seed=plan.seed, round=round)[0]
        ):
            return True
        if plan.partition is None:
            return False
        cut = partition_cut(
            plan.partition, plan.peers, np.array([src]), np.array([self.mine]), round=round
        )
        return bool(cut[0])

    def resume(self, round: int) -> int:
        """The round to continue at after a restore that left the peer at ``round``."""
        at = self.plan.resume_at
        if at is None or at <= round:
            return round
        log.warning("%s: fault plan resumes it at round %d (checkpoint: %d)", self.me, at, round)
        return at

    async def before_round(
        self, round: int, stop: asyncio.Event, link: ConnectionState | None = None
    ) -> None:
        """Hold (to be killed) or wait at a gate before ``round``, as the plan says. At a gate
        the peer says it is there, then, once ``link`` is up, that it is connected (the launcher
        may have to start the broker first), then waits for the gate to open."""
        directory = self.plan.gate_dir
        if directory is None:
            return
        if round in self.plan.hold_at:
            log.warning("%s: fault plan holds it before round %d (to be killed)", self.me, round)
            hold_path(directory, round, self.me).touch()
            await stop.wait()
            return
        if round not in self.plan.gates:
            return
        gate = gate_path(directory, round)
        gate.mkdir(parents=True, exist_ok=True)
        (gate / self.me).touch()
        log.info("%s: waiting at the gate of round %d", self.me, round)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_GATE_LIMIT_S):
                if link is not None:
                    await first_of(link.wait_up(), stop.wait())
                (gate / f"{self.me}{LINKED}").touch()
                while not (gate / GATE_OPEN).exists() and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_POLL_S):
                            await stop.wait()

    async def before_publish(self) -> None:
        """A slow link: every frame this peer publishes waits ``slow_ms`` first."""
        if self.plan.slow_ms > 0:
            await self._sleep(self.plan.slow_ms / 1000)
