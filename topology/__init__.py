"""Topologies: graph families, graphs from files, mixing weights, spectral analysis, schedules."""

from topology.analysis import TopologyReport, describe, diameter
from topology.errors import (
    DirectedGraphError,
    DisconnectedGraph,
    EmptyGraph,
    SelfLoops,
    TopologyError,
)
from topology.io import load_graph
from topology.membership import membership_graph
from topology.mixing import (
    MixingEdges,
    Rule,
    is_column_stochastic,
    is_doubly_stochastic,
    is_row_stochastic,
    is_symmetric,
    mixing_edges,
    mixing_matrix,
)
from topology.named import FAMILIES, build_graph
from topology.schedules import (
    OnePeerExponential,
    RandomMatching,
    Schedule,
    StaticSchedule,
    schedule_from_spec,
)
from topology.spectral import consensus_rounds, spectral_gap
from topology.validation import validate_graph

__all__ = [
    "FAMILIES",
    "DirectedGraphError",
    "DisconnectedGraph",
    "EmptyGraph",
    "MixingEdges",
    "OnePeerExponential",
    "RandomMatching",
    "Rule",
    "Schedule",
    "SelfLoops",
    "StaticSchedule",
    "TopologyError",
    "TopologyReport",
    "build_graph",
    "consensus_rounds",
    "describe",
    "diameter",
    "is_column_stochastic",
    "is_doubly_stochastic",
    "is_row_stochastic",
    "is_symmetric",
    "load_graph",
    "membership_graph",
    "mixing_edges",
    "mixing_matrix",
    "schedule_from_spec",
    "spectral_gap",
    "validate_graph",
]
