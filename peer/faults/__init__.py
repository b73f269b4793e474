"""Fault injection for rehearsing failures on real peers, switched on only by
``rumor peer --faults FILE`` (which ``rumor up`` writes from its failure flags)."""

from peer.faults.inject import Faults
from peer.faults.plan import FaultPlan, load_plan, plan_from_json, plan_to_json

__all__ = ["FaultPlan", "Faults", "load_plan", "plan_from_json", "plan_to_json"]
