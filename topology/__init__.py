"""Topologies: graph families, graphs from files, mixing weights, spectral analysis, schedules."""
