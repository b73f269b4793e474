"""Wall time per phase of a simulation round (``rumor sim --profile``).

A round splits into ``failures`` (planning: who is up, which messages arrive), ``train`` (local
SGD), ``compress`` (each peer's public copy after its frame), ``mix`` (the CHOCO step with the
neighbours' copies), ``bookkeeping`` (bytes on the wire, the divergence check, the per-round
stats) and ``evaluate`` (the held-out test set, on evaluated rounds only); ``engine`` is the
engine's time outside those phases (near zero for the vector engine, which times its own; all of
the loop engine's step). Phases are exclusive: a phase entered inside another pauses it, so the
phases add up to the round.

On a GPU, work is queued and runs later; a profiling timer therefore waits for the device at
every phase boundary (``sync``), which costs a little speed: profile to find the bottleneck, not
to measure the top speed.

>>> timer = PhaseTimer(enabled=True)
>>> with timer.phase("train"):
...     with timer.phase("mix"):
...         pass
>>> sorted(timer.seconds) == sorted(PHASES), timer.seconds["failures"]
(True, 0.0)
>>> PhaseTimer().phase("train").__class__.__name__
'nullcontext'
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

__all__ = ["PHASES", "PhaseTimer", "format_profile"]

PHASES = ("failures", "train", "compress", "mix", "bookkeeping", "evaluate", "engine")


class PhaseTimer:
    """Accumulates wall seconds per phase; disabled (the default), it costs one call per phase."""

    def __init__(self, *, enabled: bool = False, sync: Callable[[], None] | None = None) -> None:
        self.enabled = enabled
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.rounds = 0
        self._sync = sync
        self._stack: list[str] = []
        self._since = 0.0

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time the ``with`` block as phase ``name`` (one of :data:`PHASES`)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return self._timed(name)

    @contextlib.contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        if name not in self.seconds:
            raise ValueError(f"unknown phase {name!r}; expected one of {', '.join(PHASES)}")
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        """Charge the time since the last switch to the phase on top of the stack."""
        if self._sync is not None:
            self._sync()
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._since = now

    def summary(self) -> dict[str, object]:
        """JSON-ready: seconds per phase in all and per round, and each phase's share."""
        total = sum(self.seconds.values())
        rounds = max(self.rounds, 1)
        return {
            "rounds": self.rounds,
            "total_s": total,
            "phases": {
                name: {
                    "total_s": s,
                    "per_round_ms": 1e3 * s / rounds,
                    "share": s / total if total > 0 else 0.0,
                }
                for name, s in self.seconds.items()
            },
        }


def format_profile(summary: dict[str, object]) -> str:
    """The profile as a small table, one phase per line.

    >>> timer = PhaseTimer(enabled=True); timer.rounds = 2; timer.seconds["mix"] = 0.5
    >>> print(format_profile(timer.summary()).splitlines()[5])
    mix              0.500 s    250.000 ms/round 100.0 %
    """
    phases = summary["phases"]
    assert isinstance(phases, dict)
    lines = [
        f"profile over {summary['rounds']} rounds (wall time per phase):",
        f"{'phase':<12} {'total':>11} {'per round':>16} {'share':>7}",
    ]
    for name, row in phases.items():
        lines.append(
            f"{name:<12} {row['total_s']:>9.3f} s {row['per_round_ms']:>10.3f} ms/round "
            f"{100 * row['share']:>5.1f} %"
        )
    lines.append(f"{'all':<12} {summary['total_s']:>9.3f} s")
    return "\n".join(lines)
