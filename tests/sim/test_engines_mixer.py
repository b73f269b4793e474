"""The vector engine's sparse mixing step against a per-peer reference from protocol.mixing."""

from __future__ import annotations

import numpy as np
import torch

from protocol.mixing import gossip_update, neighbour_mix
from sim.engines.mixer import SparseMixer, choco_matrix
from sim.plan import RoundPlan

N, P = 6, 5
# A directed ring both ways plus a repeated edge 0 -> 3 and a chord 4 -> 1.
SRC = np.array([0, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 0, 0, 0, 4])
DST = np.array([1, 2, 3, 4, 5, 0, 0, 1, 2, 3, 4, 5, 3, 3, 1])
WEIGHT = np.linspace(0.05, 0.3, len(SRC))


def _plan(mix: np.ndarray, byzantine: np.ndarray | None = None) -> RoundPlan:
    alive = np.ones(N, dtype=bool)
    return RoundPlan(
        round=0,
        src=SRC,
        dst=DST,
        weight=WEIGHT,
        alive=alive,
        steps=np.ones(N, dtype=np.int64),
        keyframe=np.zeros(N, dtype=bool),
        seqs=np.ones(N, dtype=np.int64),
        seeds=[0] * N,
        delivered=mix.copy(),
        mix=mix,
        byzantine=np.zeros(N, dtype=bool) if byzantine is None else byzantine,
    )


def _reference(x: torch.Tensor, x_hat: torch.Tensor, plan: RoundPlan, gamma: float) -> torch.Tensor:
    """Peer by peer through protocol.mixing in float64, rounded once (the loop engine)."""
    out = x.clone()
    weights = torch.from_numpy(plan.weight).to(x.dtype).to(torch.float64)
    for peer in range(N):
        edges = np.flatnonzero((plan.dst == peer) & plan.mix & ~plan.byzantine[peer])
        if len(edges) == 0:
            continue
        copies = x_hat[torch.from_numpy(plan.src[edges])].to(torch.float64)
        mixed, total = neighbour_mix(weights[torch.from_numpy(edges)], copies)
        wide = gossip_update(x[peer].double(), x_hat[peer].double(), mixed, total, gamma=gamma)
        out[peer] = wide.to(x.dtype)
    return out


def test_choco_matrix_is_w_minus_its_row_sums_on_the_diagonal() -> None:
    src, dst = torch.from_numpy(SRC), torch.from_numpy(DST)
    weight = torch.from_numpy(WEIGHT)
    dense = torch.zeros(N, N, dtype=torch.float64)
    for s, d, w in zip(SRC.tolist(), DST.tolist(), WEIGHT.tolist(), strict=True):
        dense[d, s] += w  # the repeated edge 0 -> 3 counts twice
        dense[d, d] -= w
    torch.testing.assert_close(choco_matrix(src, dst, weight, N).to_dense(), dense)


def test_mix_matches_the_per_peer_reference_bit_for_bit_under_masks() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, P, generator=g)
    x_hat = x + 0.1 * torch.randn(N, P, generator=g)
    mixer = SparseMixer()
    everything = np.ones(len(SRC), dtype=bool)
    dropped = everything.copy()
    dropped[[1, 6, 12]] = False
    byzantine = np.zeros(N, dtype=bool)
    byzantine[4] = True
    # the second and third plans must not reuse the first one's cached matrix
    for plan in (_plan(everything), _plan(dropped), _plan(everything, byzantine)):
        got = x.clone()
        mixer.mix(got, x_hat, plan, gamma=0.7)
        expected = _reference(x, x_hat, plan, 0.7)
        assert torch.equal(got, expected)
        assert not torch.equal(got, x)
    assert torch.equal(got[4], x[4])  # a Byzantine receiver mixes nothing


def test_a_peer_that_receives_nothing_is_left_exactly_as_it_was() -> None:
    mix = DST != 2
    x = torch.randn(N, P, dtype=torch.float64)
    x_hat = torch.randn(N, P, dtype=torch.float64)
    got = x.clone()
    SparseMixer().mix(got, x_hat, _plan(mix), gamma=1.0)
    assert torch.equal(got[2], x[2])
    torch.testing.assert_close(got, _reference(x, x_hat, _plan(mix), 1.0), rtol=1e-14, atol=0)
