"""Training only when the device allows it: ``[availability]`` (:mod:`peer.availability.gate`)."""

from peer.availability.gate import AvailabilityGate, PresenceAnnouncer, catch_up_round
from peer.availability.policy import Reading, Readings, SystemReadings, pause_reason

__all__ = [
    "AvailabilityGate",
    "PresenceAnnouncer",
    "Reading",
    "Readings",
    "SystemReadings",
    "catch_up_round",
    "pause_reason",
]
