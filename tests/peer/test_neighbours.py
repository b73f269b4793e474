"""Family graphs: every peer names its neighbours exactly as they name themselves."""

from __future__ import annotations

import pytest

from peer.runtime.neighbours import family_neighbourhood
from protocol.topics import peer_name


@pytest.mark.parametrize(("family", "size"), [("ring", 16), ("torus", 16), ("ring", 101)])
def test_rumor_up_names_reach_every_neighbour_past_ten_peers(family: str, size: int) -> None:
    # rumor up names peers p0 .. p{n-1} unpadded; p10 once expected 'p09', a peer that does not
    # exist, and never heard p9.
    names = {peer_name(i) for i in range(size)}
    for i in range(size):
        hood = family_neighbourhood(family, size, me=peer_name(i), node=i, seed=0)
        assert hood.neighbours <= names, (peer_name(i), sorted(hood.neighbours - names))
        for other in hood.neighbours:
            back = family_neighbourhood(family, size, me=other, node=int(other[1:]), seed=0)
            assert peer_name(i) in back.neighbours, f"{other} does not name {peer_name(i)}"


def test_zero_padded_ids_name_zero_padded_neighbours() -> None:
    names = {f"pi-{i:03d}" for i in range(12)}
    for i in range(12):
        hood = family_neighbourhood("ring", 12, me=f"pi-{i:03d}", node=i, seed=0)
        assert hood.neighbours <= names
        assert len(hood.neighbours) == 2
