"""``rumor init``: a fleet's per-device configs from one description (:mod:`peer.fleet.plan`)."""

from peer.fleet.plan import Device, FleetPlan, load_fleet, parse_fleet
from peer.fleet.write import InitResult, check_out, init_fleet, peer_tables

__all__ = [
    "Device",
    "FleetPlan",
    "InitResult",
    "check_out",
    "init_fleet",
    "load_fleet",
    "parse_fleet",
    "peer_tables",
]
