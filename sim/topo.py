"""The run's topology: a schedule of mixing edges per round, and its spectral gap.

Static graph families (``ring``, ``torus``, ``random_regular:d=4``, ...) and time-varying
schedules (``one_peer_exponential``, ``random_matching``) both come from :mod:`topology`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from protocol.spec import parse_spec
from topology.mixing import MixingEdges
from topology.schedules import StaticSchedule, schedule_from_spec
from topology.spectral import spectral_gap

__all__ = ["Schedule", "Topology", "make_topology"]

log = logging.getLogger(__name__)


class Schedule(Protocol):
    def edges_at(self, round: int) -> MixingEdges: ...


@dataclass(frozen=True, kw_only=True)
class Topology:
    spec: str
    schedule: Schedule
    static: bool
    spectral_gap: float | None
    """rho of the static mixing matrix; None for time-varying schedules."""

    def edges_at(self, round: int) -> MixingEdges:
        return self.schedule.edges_at(round)


def make_topology(spec: str, n: int, *, seed: int) -> Topology:
    """Build the topology ``spec`` for ``n`` peers (ConfigError naming the problem if bad)."""
    schedule = schedule_from_spec(parse_spec(spec), n, seed=seed)
    static = isinstance(schedule, StaticSchedule)
    gap = spectral_gap(schedule.edges_at(0)) if static else None
    return Topology(spec=spec, schedule=schedule, static=static, spectral_gap=gap)
