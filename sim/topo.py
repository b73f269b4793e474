"""The run's topology: a schedule of mixing edges per round, and its spectral gap.

Static graph families (``ring``, ``torus``, ``random_regular:d=4``, ...) and time-varying
schedules (``one_peer_exponential``, ``random_matching``) both come from :mod:`topology`.

The spectral gap is only reported, never used by the run, so it gets a bounded effort (a few
seconds at most): the dense solver up to :data:`topology.spectral.DENSE_LIMIT` peers, then at most
:data:`GAP_LANCZOS_STEPS` sparse Lanczos steps up to :data:`GAP_PEER_LIMIT` peers, and nothing
beyond. A gap too small to resolve that way (long rings) or not computed is reported as None with
the reason (``rumor topology NAME --nodes N`` spends more on it); the run goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from protocol.errors import ConfigError
from protocol.spec import parse_spec
from topology.errors import DirectedGraphError, TopologyError
from topology.mixing import MixingEdges
from topology.schedules import StaticSchedule, schedule_from_spec
from topology.spectral import DENSE_LIMIT, Method, spectral_gap

__all__ = [
    "GAP_LANCZOS_STEPS",
    "GAP_PEER_LIMIT",
    "Schedule",
    "Topology",
    "make_topology",
    "reported_gap",
]

log = logging.getLogger(__name__)

GAP_LANCZOS_STEPS = 200
"""Lanczos steps allowed for the reported gap of more than DENSE_LIMIT peers."""
GAP_PEER_LIMIT = 10_000
"""Above this many peers the reported gap is not computed (tens of seconds and more)."""


class Schedule(Protocol):
    def edges_at(self, round: int) -> MixingEdges: ...


@dataclass(frozen=True, kw_only=True)
class Topology:
    spec: str
    schedule: Schedule
    static: bool
    spectral_gap: float | None
    """rho of the static mixing matrix; None when there is none or it was not resolved."""
    gap_note: str | None = None
    """Why ``spectral_gap`` is None."""

    def edges_at(self, round: int) -> MixingEdges:
        return self.schedule.edges_at(round)


def reported_gap(edges: MixingEdges) -> tuple[float | None, str | None]:
    """(rho, None), or (None, the reason) when the bounded solver cannot resolve rho.

    >>> from topology.schedules import schedule_from_spec
    >>> reported_gap(schedule_from_spec(parse_spec("ring"), 20_000, seed=0).edges_at(0))
    (None, 'not computed above 10000 peers')
    """
    if edges.n > GAP_PEER_LIMIT:
        return None, f"not computed above {GAP_PEER_LIMIT} peers"
    method: Method = "auto" if edges.n <= DENSE_LIMIT else "sparse"
    try:
        return spectral_gap(edges, method=method, max_iter=GAP_LANCZOS_STEPS), None
    except TopologyError as exc:  # SpectralNotConverged, or weights the solver cannot take
        log.info("spectral gap of %d peers not reported: %s", edges.n, exc)
        return None, f"not converged in {GAP_LANCZOS_STEPS} Lanczos steps ({edges.n} peers)"


def make_topology(spec: str, n: int, *, seed: int) -> Topology:
    """Build the topology ``spec`` for ``n`` peers (ConfigError naming the problem if bad)."""
    try:
        schedule = schedule_from_spec(parse_spec(spec), n, seed=seed)
    except DirectedGraphError as exc:
        raise ConfigError(
            f"topology {spec!r} is a directed graph; gossip mixes with Metropolis weights, "
            "which need an undirected one"
        ) from exc
    if not isinstance(schedule, StaticSchedule):
        return Topology(
            spec=spec, schedule=schedule, static=False, spectral_gap=None, gap_note="time-varying"
        )
    gap, note = reported_gap(schedule.edges_at(0))
    return Topology(spec=spec, schedule=schedule, static=True, spectral_gap=gap, gap_note=note)
