"""Fault injection for rehearsing failures on real peers, switched on only by
``rumor peer --faults FILE`` (which ``rumor up`` writes from its failure flags).

The plan (:mod:`peer.faults.plan`) is torch-free, for the launcher; what it does inside a peer is
:class:`peer.faults.inject.Faults`.
"""

from peer.faults.plan import FaultPlan, load_plan, plan_from_json, plan_to_json

__all__ = ["FaultPlan", "load_plan", "plan_from_json", "plan_to_json"]
