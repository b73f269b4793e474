"""The named lookup: ``ring``, ``random_regular:d=4``, ``small_world:k=4,p=0.1`` -> a graph.

The CLI, config files and the simulator all name topologies through :func:`build_graph`, which
parses with :func:`protocol.spec.parse_spec` and checks parameters against :data:`FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

import networkx as nx

from protocol.errors import ConfigError
from protocol.spec import Param, Spec, parse_spec
from topology import families
from topology.errors import TopologyError
from topology.validation import validate_graph

__all__ = ["FAMILIES", "Family", "build_graph", "describe_families"]

# A family function takes n and keyword parameters (already type-checked against ``params``).
Builder: TypeAlias = Callable[..., "nx.Graph[int]"]


@dataclass(frozen=True, kw_only=True)
class Family:
    """A graph family: its builder, accepted parameters (with types), whether it is random."""

    name: str
    build: Builder
    params: Mapping[str, type] = field(default_factory=dict)
    random: bool = False
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"family name {self.name!r} must be an identifier")

    @property
    def usage(self) -> str:
        """How to write it: ``name`` or ``name:p1=..,p2=..``."""
        accepted = [*self.params, *(["seed"] if self.random else [])]
        return self.name + (":" + ",".join(f"{p}=.." for p in accepted) if accepted else "")


def _family(name: str, summary: str, *, random: bool = False, **params: type) -> Family:
    return Family(
        name=name, build=getattr(families, name), params=params, random=random, summary=summary
    )


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        f.name: f
        for f in (
            _family("ring", "cycle; weights 1/3, slowest mixing"),
            _family("torus", "2D periodic grid", rows=int),
            _family("complete", "all pairs; exact average in one round"),
            _family("dumbbell", "two cliques joined by one edge; a bottleneck"),
            _family("star", "hub and spokes; the centralised baseline"),
            _family("hypercube", "n a power of two; gap 2/(log2 n + 1)"),
            _family("random_regular", "random d-regular expander", random=True, d=int),
            _family("erdos_renyi", "G(n, p), resampled until connected", random=True, p=float),
            _family("small_world", "Watts-Strogatz", random=True, k=int, p=float),
            _family("scale_free", "Barabasi-Albert", random=True, m=int),
            _family("exponential", "static i -> i + 2^k", directed=bool),
        )
    }
)


def describe_families() -> str:
    """One line per family: usage and summary (for ``--help`` and error messages)."""
    width = max(len(f.usage) for f in FAMILIES.values())
    return "\n".join(f"  {f.usage:<{width}}  {f.summary}" for f in FAMILIES.values())


def _coerce(family: str, key: str, value: Param, expected: type) -> Param:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected:
        raise TopologyError(
            f"{family}: parameter {key}={value!r} must be {expected.__name__}, "
            f"got {type(value).__name__}"
        )
    return value


def build_graph(spec: str | Spec, n: int, *, seed: int = 0) -> nx.Graph[int]:
    """Build the named family on nodes ``0..n-1``; a ``seed`` in the spec overrides ``seed``.

    >>> sorted(d for _, d in build_graph("random_regular:d=3", 10, seed=1).degree())[:3]
    [3, 3, 3]
    >>> build_graph("ring:d=2", 8)
    Traceback (most recent call last):
    ...
    topology.errors.TopologyError: ring: unknown parameter(s) d; accepted: none
    """
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    family = FAMILIES.get(parsed.name)
    if family is None:
        accepted = ", ".join(f.usage for f in FAMILIES.values())
        raise TopologyError(f"unknown topology {parsed.name!r}; accepted: {accepted}")
    accepted_keys = [*family.params, *(["seed"] if family.random else [])]
    try:
        parsed.expect(*accepted_keys)
    except ConfigError as exc:
        raise TopologyError(str(exc)) from exc
    kwargs = {
        key: _coerce(family.name, key, value, family.params[key])
        for key, value in parsed.params.items()
        if key != "seed"
    }
    if family.random:
        kwargs["seed"] = _coerce(family.name, "seed", parsed.params.get("seed", seed), int)
    g = family.build(n, **kwargs)
    validate_graph(g, allow_directed=True)
    return g
