"""The rumor simulator: vectorised and reference engines, failure models, experiments, reports.

>>> from sim import SimConfig, Simulation
>>> stats = list(Simulation(SimConfig(topology="complete", peers=4, rounds=1, dim=2)).run())
>>> stats[-1].consensus_distance < 1e-20
True
"""

from sim.config import SimConfig
from sim.failures import FailureConfig
from sim.metrics import RoundStats
from sim.report import RunResult, run_and_report
from sim.runner import Simulation

__all__ = ["FailureConfig", "RoundStats", "RunResult", "SimConfig", "Simulation", "run_and_report"]
