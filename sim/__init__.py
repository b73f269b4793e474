"""The rumor simulator: vectorised and reference engines, failure models, experiments, reports.

>>> from sim import SimConfig, Simulation
>>> stats = list(Simulation(SimConfig(topology="complete", peers=4, rounds=1, dim=2)).run())
>>> stats[-1].consensus_distance < 1e-20
True

The names load on first use (PEP 562): ``rumor``'s dispatcher imports ``sim.cli`` to build its
parser, and that must not cost a torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.lazy import lazy_exports

if TYPE_CHECKING:
    from sim.config import SimConfig
    from sim.failures import FailureConfig
    from sim.metrics import SwarmRoundStats
    from sim.report import RunResult, run_and_report
    from sim.runner import Simulation

_HOME_OF = {
    "FailureConfig": "sim.failures",
    "SwarmRoundStats": "sim.metrics",
    "RunResult": "sim.report",
    "SimConfig": "sim.config",
    "Simulation": "sim.runner",
    "run_and_report": "sim.report",
}

__all__ = [
    "FailureConfig",
    "RunResult",
    "SimConfig",
    "Simulation",
    "SwarmRoundStats",
    "run_and_report",
]


__getattr__, __dir__ = lazy_exports("sim", _HOME_OF, globals())
