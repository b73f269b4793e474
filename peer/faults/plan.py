"""The fault plan a peer reads from ``rumor peer --faults FILE``: what to do to this one process.

``rumor up`` writes one plan per launch of a peer (JSON, below) from the failure flags it shares
with ``rumor sim``. There is no peer.toml key for any of it: a production config cannot switch
fault injection on by accident, and the daemon logs a WARNING when a plan is loaded.

JSON keys (all optional but ``seed`` and ``index``)::

    {"seed": 0, "index": {"p0": 0, "p1": 1}, "peers": 2,
     "drop": 0.2, "partition": "40-70:fraction=0.5",
     "hold_at": [30], "resume_at": 60, "gates": [60], "gate_dir": "/run/faults",
     "slow_ms": 0}

- ``drop``, ``partition``: frames received from neighbours are lost as the simulator loses them
  (:func:`protocol.failure_schedule.link_lost`, :func:`~protocol.failure_schedule.partition_cut`,
  by the frame's round and the two peers' indices).
- ``hold_at``: before these rounds the peer stops and waits to be killed (a crash by SIGKILL).
- ``resume_at``: after restoring its checkpoint, the peer continues at this round.
- ``gates``: before these rounds the peer waits in ``gate_dir`` until the launcher opens them.
- ``slow_ms``: every frame this peer publishes waits this long first.

>>> plan = plan_from_json('{"seed": 1, "index": {"p0": 0, "p1": 1}, "drop": 0.5}')
>>> plan.drop, plan.peers, plan.lossy
(0.5, 2, True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ConfigError
from protocol.failures import PartitionWindow, parse_drop
from protocol.types import PeerId

__all__ = [
    "GATE_OPEN",
    "LINKED",
    "MAX_SLOW_MS",
    "FaultPlan",
    "gate_path",
    "hold_path",
    "load_plan",
    "plan_from_json",
    "plan_to_json",
]

_KEYS = {"seed", "index", "peers", "drop", "partition", "hold_at", "resume_at", "gates"}
_KEYS |= {"gate_dir", "slow_ms"}
MAX_PEERS = 100_000
MAX_SLOW_MS = 60_000.0
"""The longest a slow link may hold each frame."""


GATE_OPEN = "open"
"""The file the launcher creates in a gate's folder to let the peers waiting there through."""
LINKED = ".up"
"""Suffix of the file a peer at a gate adds once its broker link is up (``p3.up``)."""


def gate_path(directory: Path, round: int) -> Path:
    """The folder of the gate before ``round``: each peer there touches its name, the launcher
    creates :data:`GATE_OPEN`."""
    return directory / f"gate-{round}"


def hold_path(directory: Path, round: int, peer: PeerId) -> Path:
    """The file a peer touches when it holds before ``round`` (waiting to be killed)."""
    return directory / f"hold-{round}-{peer}"


@dataclass(frozen=True, kw_only=True)
class FaultPlan:
    seed: int
    index: dict[PeerId, int]
    """Every peer's index in the swarm (the simulator's node numbers)."""
    peers: int
    drop: float = 0.0
    partition: PartitionWindow | None = None
    hold_at: tuple[int, ...] = ()
    resume_at: int | None = None
    gates: tuple[int, ...] = ()
    gate_dir: Path | None = None
    slow_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < len(self.index) <= MAX_PEERS or self.peers < len(self.index):
            raise ConfigError(f"faults: index must name 1 to {MAX_PEERS} peers, at most peers")
        if any(not 0 <= i < self.peers for i in self.index.values()):
            raise ConfigError(f"faults: every index must lie in 0..{self.peers - 1}")
        if (self.gates or self.hold_at) and self.gate_dir is None:
            raise ConfigError("faults: hold_at and gates need gate_dir")
        if not 0 <= self.slow_ms <= MAX_SLOW_MS:
            raise ConfigError(
                f"faults: slow_ms must be in [0, {MAX_SLOW_MS:g}], got {self.slow_ms}"
            )

    @property
    def lossy(self) -> bool:
        """Whether received frames may be dropped (and so must be looked at)."""
        return self.drop > 0 or self.partition is not None


def _rounds(value: object, key: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(v) is int and v >= 0 for v in value):
        raise ConfigError(f"faults: {key} must be a list of rounds >= 0, got {value!r}")
    return tuple(value)


def plan_from_json(text: str) -> FaultPlan:
    """Parse and check a plan; ConfigError naming the key on anything wrong."""
    try:
        return _plan(text)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith("faults: ") else f"faults: {message}"
        ) from exc


def _plan(text: str) -> FaultPlan:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"faults: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError("faults: expected a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"faults: unknown key(s) {', '.join(unknown)}")
    index, seed = data.get("index"), data.get("seed")
    if not isinstance(index, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in index.items()
    ):
        raise ConfigError("faults: index must map peer names to integers")
    if type(seed) is not int:
        raise ConfigError(f"faults: seed must be an integer, got {seed!r}")
    resume = data.get("resume_at")
    if resume is not None and (type(resume) is not int or resume < 0):
        raise ConfigError(f"faults: resume_at must be a round >= 0, got {resume!r}")
    window = data.get("partition")
    gate_dir = data.get("gate_dir")
    slow = data.get("slow_ms", 0)
    if isinstance(slow, bool) or not isinstance(slow, int | float):
        raise ConfigError(f"faults: slow_ms must be a number, got {slow!r}")
    return FaultPlan(
        seed=seed,
        index=dict(index),
        peers=int(data.get("peers", len(index))),
        drop=parse_drop(data.get("drop", 0.0)),
        partition=None if window is None else PartitionWindow.parse(str(window)),
        hold_at=_rounds(data.get("hold_at", []), "hold_at"),
        resume_at=resume,
        gates=_rounds(data.get("gates", []), "gates"),
        gate_dir=None if gate_dir is None else Path(str(gate_dir)),
        slow_ms=float(slow),
    )


def plan_to_json(plan: FaultPlan) -> str:
    """The JSON :func:`plan_from_json` reads back.

    >>> p = FaultPlan(seed=3, index={"p0": 0}, peers=1, hold_at=(2,), gate_dir=Path("g"))
    >>> plan_from_json(plan_to_json(p)) == p
    True
    """
    window = plan.partition
    data: dict[str, object] = {
        "seed": plan.seed,
        "index": plan.index,
        "peers": plan.peers,
        "drop": plan.drop,
        "partition": None
        if window is None
        else f"{window.start}-{window.end}:fraction={window.fraction}",
        "hold_at": list(plan.hold_at),
        "resume_at": plan.resume_at,
        "gates": list(plan.gates),
        "gate_dir": None if plan.gate_dir is None else str(plan.gate_dir),
        "slow_ms": plan.slow_ms,
    }
    return json.dumps({k: v for k, v in data.items() if v is not None}, indent=1)


def load_plan(path: Path) -> FaultPlan:
    """Read ``rumor peer --faults FILE``; ConfigError naming the file on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--faults {str(path)!r}: {exc.strerror}") from exc
    try:
        return plan_from_json(text)
    except ConfigError as exc:
        raise ConfigError(f"--faults {str(path)!r}: {exc}") from exc
