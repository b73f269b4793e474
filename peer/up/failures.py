"""``rumor up``'s failure flags: the simulator's grammar and seeded schedules, for real peers.

The flags parse with :mod:`protocol.failures` and draw with :mod:`protocol.failure_schedule`,
as ``rumor sim`` does, so the same flags and seed give the same schedule in both:

- ``--crash PEER@ROUND[-RECOVER]`` and ``--churn``: down periods. The peer holds before ROUND
  and is SIGKILLed; it restarts from its checkpoint and continues at RECOVER, when the rest of
  the swarm has come to RECOVER (they wait for it there, as the simulator's rounds do).
- ``--drop P`` and ``--partition-window``: each peer loses received frames as the simulator's
  receivers do (by link and round).
- ``--stragglers FRACTION[:steps=S]``: the simulator's seeded set of peers does S local steps.
- real only: ``--broker-outage START-END`` stops the broker when the swarm reaches START and
  starts it again on the same port at END; ``--slow-link PEER:ms=D`` delays every frame PEER
  publishes by D ms.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peer.faults.plan import MAX_SLOW_MS, FaultPlan
from protocol.errors import ConfigError
from protocol.failure_schedule import (
    churn_schedule,
    crash_alive,
    down_periods,
    peer_subset,
    round_rng,
)
from protocol.failures import Churn, Crash, PartitionWindow, Stragglers, parse_drop
from protocol.spec import parse_spec
from protocol.topics import peer_name

__all__ = ["UpFailures", "add_failure_arguments", "failures_from_args"]

_WINDOW = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True, kw_only=True)
class UpFailures:
    """The failures of one ``rumor up`` run; the default is none."""

    drop: float = 0.0
    crashes: tuple[Crash, ...] = ()
    churn: Churn | None = None
    partition: PartitionWindow | None = None
    stragglers: Stragglers | None = None
    outage: tuple[int, int] | None = None
    slow: dict[int, float] = field(default_factory=dict)
    """Peer index -> ms each publish waits."""

    @property
    def any(self) -> bool:
        return self != UpFailures()

    @property
    def needs_plans(self) -> bool:
        """Whether peers get a fault plan (``rumor peer --faults``)."""
        down = bool(self.crashes) or self.churn is not None or self.outage is not None
        return down or self.drop > 0 or self.partition is not None or bool(self.slow)

    def check(self, peers: int, rounds: int) -> None:
        for crash in self.crashes:
            if crash.peer >= peers:
                raise ConfigError(f"--crash: peer {crash.peer} does not exist (0..{peers - 1})")
        for index in self.slow:
            if index >= peers:
                raise ConfigError(f"--slow-link: peer {index} does not exist (0..{peers - 1})")

    def down(self, peers: int, rounds: int, *, seed: int) -> list[Crash]:
        """Every down period (crashes and churn together), in round order."""
        up = np.stack([crash_alive(self.crashes, peers, round=r) for r in range(rounds)])
        if self.churn is not None:
            up &= churn_schedule(self.churn, peers, rounds, seed=seed)
        return down_periods(up)

    def straggler_steps(self, peers: int, local_steps: int, *, seed: int) -> dict[int, int]:
        """Peer index -> its local steps, for the simulator's seeded stragglers."""
        if self.stragglers is None:
            return {}
        slow = peer_subset(self.stragglers.fraction, peers, rng=round_rng(seed, "stragglers"))
        fewer = self.stragglers.steps
        steps = local_steps // 2 if fewer is None else min(fewer, local_steps)
        return {int(i): steps for i in np.flatnonzero(slow)}

    def sim_flags(self) -> list[str]:
        """The ``rumor sim`` flags that replay what the simulator can model."""
        flags = [] if not self.drop else ["--drop", f"{self.drop:g}"]
        for c in self.crashes:
            flags += [
                "--crash",
                f"{c.peer}@{c.at}" + ("" if c.recover is None else f"-{c.recover}"),
            ]
        if self.churn:
            ch = self.churn
            flags += ["--churn", f"up={ch.up:g},down={ch.down:g},fraction={ch.fraction:g}"]
        if self.partition:
            w = self.partition
            flags += ["--partition-window", f"{w.start}-{w.end}:fraction={w.fraction:g}"]
        if self.stragglers:
            s = self.stragglers
            flags += [
                "--stragglers",
                f"{s.fraction:g}" + ("" if s.steps is None else f":steps={s.steps}"),
            ]
        return flags


def plan_for(
    failures: UpFailures,
    index: int,
    *,
    peers: int,
    periods: list[Crash],
    seed: int,
    gate_dir: Path,
    resume_at: int | None = None,
) -> FaultPlan:
    """Peer ``index``'s plan for one launch: hold before each of its crashes, wait at every
    recovery gate it is up for."""
    holds = tuple(c.at for c in periods if c.peer == index)
    recoveries = {c.recover for c in periods if c.recover is not None}
    gates = tuple(
        sorted({r for r in recoveries if alive_at(periods, index, r)} | outage_rounds(failures))
    )
    return FaultPlan(
        seed=seed,
        index={peer_name(j): j for j in range(peers)},
        peers=peers,
        drop=failures.drop,
        partition=failures.partition,
        hold_at=holds,
        resume_at=resume_at,
        gates=gates,
        gate_dir=gate_dir,
        slow_ms=failures.slow.get(index, 0.0),
    )


def outage_rounds(failures: UpFailures) -> set[int]:
    """The rounds every peer waits at while the launcher stops or starts the broker."""
    return set() if failures.outage is None else set(failures.outage)


def alive_at(periods: list[Crash], index: int, round: int) -> bool:
    """Whether peer ``index`` is up at ``round`` under these down periods."""
    return not any(
        c.peer == index and c.at <= round and (c.recover is None or round < c.recover)
        for c in periods
    )


def add_failure_arguments(parser: argparse.ArgumentParser) -> None:
    """The failure flags, as ``rumor sim`` spells them, plus two only real swarms have."""
    add = parser.add_argument
    add("--drop", type=float, help="each received frame is lost with this probability")
    add("--crash", action="append", metavar="PEER@ROUND[-RECOVER]", help="SIGKILL and restart")
    add("--churn", metavar="up=U,down=D[,fraction=F]", help="peers go down and up (rounds)")
    add("--partition-window", metavar="START-END[:fraction=F]", help="cut the swarm in two")
    add("--stragglers", metavar="FRACTION[:steps=S]", help="a fraction doing fewer local steps")
    add("--broker-outage", metavar="START-END", help="stop the broker from round START to END")
    add("--slow-link", action="append", metavar="PEER:ms=D", help="delay PEER's frames by D ms")


def _outage(text: str) -> tuple[int, int]:
    match = _WINDOW.match(text.strip())
    if match is None or int(match[1]) >= int(match[2]):
        raise ConfigError(f"invalid --broker-outage {text!r}; expected START-END with START < END")
    return int(match[1]), int(match[2])


def _slow(text: str) -> tuple[int, float]:
    head, _, rest = text.partition(":")
    spec = parse_spec("slow:" + rest)
    spec.expect("ms")
    ms = spec.params.get("ms")
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        ms = math.nan
    if not (head.isascii() and head.isdigit()) or not 0 <= ms <= MAX_SLOW_MS:
        raise ConfigError(
            f"invalid --slow-link {text!r}; expected PEER:ms=D (a peer index, and "
            f"0 <= D <= {MAX_SLOW_MS:g})"
        )
    return int(head), float(ms)


def _slow_links(texts: list[object]) -> dict[int, float]:
    slow: dict[int, float] = {}
    for text in texts:
        peer, ms = _slow(str(text))
        if peer in slow:
            raise ConfigError(f"--slow-link: peer {peer} given twice")
        slow[peer] = ms
    return slow


def failures_from_args(args: argparse.Namespace) -> UpFailures:
    """The flags, parsed (ConfigError naming the bad one)."""

    def get(name: str) -> object:
        return getattr(args, name, None)

    window, churn, stragglers = get("partition_window"), get("churn"), get("stragglers")
    outage, drop = get("broker_outage"), get("drop")
    crashes, slow = get("crash") or [], get("slow_link") or []
    assert isinstance(crashes, list)
    assert isinstance(slow, list)
    return UpFailures(
        drop=0.0 if drop is None else parse_drop(drop),
        crashes=tuple(Crash.parse(str(c)) for c in crashes),
        churn=None if churn is None else Churn.parse(str(churn)),
        partition=None if window is None else PartitionWindow.parse(str(window)),
        stragglers=None if stragglers is None else Stragglers.parse(str(stragglers)),
        outage=None if outage is None else _outage(str(outage)),
        slow=_slow_links(slow),
    )
