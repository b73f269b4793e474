"""The peer daemon's runtime: the gossip round loop, liveness, and per-round statistics."""

from peer.runtime.learning import LocalLearner, load_learner
from peer.runtime.neighbours import Neighbourhood, static_neighbourhood
from peer.runtime.runtime import PeerRuntime
from peer.runtime.stats import RoundStats, Timings

__all__ = [
    "LocalLearner",
    "Neighbourhood",
    "PeerRuntime",
    "RoundStats",
    "Timings",
    "load_learner",
    "static_neighbourhood",
]
