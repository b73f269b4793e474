"""docs/protocol.md, appendix A: the membership graph, reimplemented from the text alone.

The reference below uses only hashlib, as a third-party peer would; it must agree with
:func:`topology.membership_graph` and with the worked example printed in the document.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest

from peer.runtime.neighbours import MEMBERSHIP_FAMILY, membership_neighbourhood
from topology import membership_graph
from topology.membership import rings_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def h(seed: int, ring: int, peer: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{ring}:{peer}".encode(), digest_size=8).digest()


def documented_rings(live: set[str], seed: int, rings: int) -> list[list[str]]:
    return [sorted(live, key=lambda p: (h(seed, r, p), p)) for r in range(rings)]


def documented_edges(live: set[str], seed: int, rings: int) -> set[frozenset[str]]:
    edges: set[frozenset[str]] = set()
    for order in documented_rings(live, seed, rings):
        if len(order) > 1:
            edges |= {frozenset(pair) for pair in zip(order, order[1:] + order[:1], strict=True)}
    return {e for e in edges if len(e) == 2}


def example() -> dict[str, str]:
    block = DOC.read_text(encoding="utf-8").split("<!-- membership-example -->", 1)[1]
    text = block.split("```text\n", 1)[1].split("```", 1)[0]
    return dict(
        line.split(": ", 1) if ": " in line else line.split(" = ", 1)
        for line in text.strip().splitlines()
    )


def test_the_worked_example_is_what_the_code_computes() -> None:
    lines = example()
    live = {f"p{i}" for i in range(6)}
    assert lines['h(0, 0, "p0")'] == h(0, 0, "p0").hex()
    rings = documented_rings(live, 0, 2)
    assert lines["ring 0"].split() == rings[0]
    assert lines["ring 1"].split() == rings[1]
    printed = {frozenset(e.split("-")) for e in lines["edges"].split()}
    graph = membership_graph(live, MEMBERSHIP_FAMILY, seed=0)
    assert printed == {frozenset(e) for e in graph.edges()} == documented_edges(live, 0, 2)


def test_rumor_v1_uses_two_rings() -> None:
    assert re.search(r"R = 2 in rumor v1", DOC.read_text(encoding="utf-8"))
    assert rings_for(MEMBERSHIP_FAMILY) == 2


@pytest.mark.parametrize("seed", [0, 1, 12345])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 40])
def test_the_documented_construction_reproduces_topology(seed: int, size: int) -> None:
    rng = random.Random(seed * 100 + size)
    live = {f"peer-{rng.randrange(10**6)}-é" for _ in range(size)}
    graph = membership_graph(live, MEMBERSHIP_FAMILY, seed=seed)
    assert set(graph.nodes) == live
    assert {frozenset(e) for e in graph.edges()} == documented_edges(live, seed, 2)


def test_a_peer_listens_to_its_documented_neighbours() -> None:
    live = {"a", "b", "c", "d", "e"}
    edges = documented_edges(live | {"me"}, 7, 2)
    expected = {p for e in edges if "me" in e for p in e} - {"me"}
    hood = membership_neighbourhood(live, me="me", seed=7)
    assert hood.neighbours == expected
