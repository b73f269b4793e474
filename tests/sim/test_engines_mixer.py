"""The vector engine's batched mixing step against the per-peer functions of protocol.mixing."""

from __future__ import annotations

import dataclasses
from typing import Any

import networkx as nx
import numpy as np
import pytest
import torch

from protocol.mixing import choco_update, mix_weights, neighbour_sum
from sim.engines.mixer import SparseMixer
from sim.plan import RoundPlan
from topology import mixing_edges

N, P = 6, 37
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
    """Peer by peer through protocol.mixing, senders in edge order (the loop engine, a daemon)."""
    out = x.clone()
    weights = mix_weights(torch.from_numpy(plan.weight), x.dtype)
    for peer in range(len(plan.alive)):
        edges = np.flatnonzero((plan.dst == peer) & plan.mix & ~plan.byzantine[peer])
        if len(edges) == 0:
            continue
        copies = x_hat[torch.from_numpy(plan.src[edges])]
        mixed, total = neighbour_sum(weights[torch.from_numpy(edges)], copies)
        out[peer] = choco_update(x[peer], x_hat[peer], mixed, total, gamma=gamma)
    return out


FUSED = pytest.mark.parametrize("fused", [True, False], ids=["kernel", "torch"])
"""Both formulations: the CPU's fused kernel and the torch passes other devices run."""


@FUSED
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mix_matches_the_per_peer_reference_bit_for_bit_under_masks(
    dtype: torch.dtype, fused: bool
) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, P, generator=g, dtype=dtype)
    x_hat = x + 0.1 * torch.randn(N, P, generator=g, dtype=dtype)
    mixer = SparseMixer(fused=fused)
    everything = np.ones(len(SRC), dtype=bool)
    dropped = everything.copy()
    dropped[[1, 6, 12]] = False
    byzantine = np.zeros(N, dtype=bool)
    byzantine[4] = True
    # the second and third plans must not reuse the first one's cached slots
    for plan in (_plan(everything), _plan(dropped), _plan(everything, byzantine)):
        got = x.clone()
        mixer.mix(got, x_hat, plan, gamma=0.7)
        expected = _reference(x, x_hat, plan, 0.7)
        assert torch.equal(got, expected)
        assert not torch.equal(got, x)
    assert torch.equal(got[4], x[4])  # a Byzantine receiver mixes nothing


@FUSED
def test_a_peer_that_receives_nothing_is_left_exactly_as_it_was(fused: bool) -> None:
    mix = DST != 2
    x = torch.randn(N, P, dtype=torch.float64)
    x_hat = torch.randn(N, P, dtype=torch.float64)
    got = x.clone()
    SparseMixer(fused=fused).mix(got, x_hat, _plan(mix), gamma=1.0)
    assert torch.equal(got[2], x[2])
    assert torch.equal(got, _reference(x, x_hat, _plan(mix), 1.0))


@FUSED
def test_a_hub_sums_its_many_neighbours_in_the_daemons_order(fused: bool) -> None:
    """A star's hub has 49 in-neighbours, summed in one merged slot: magnitudes from 1e-6 to 1e6
    make the float64 sum depend on its order, and it must still be the per-peer one."""
    edges = mixing_edges(nx.star_graph(49))
    n = edges.n
    all_edges = np.ones(len(edges.src), dtype=bool)
    plan = dataclasses.replace(
        _plan(all_edges),
        src=edges.src.copy(),
        dst=edges.dst.copy(),
        weight=edges.weight.copy(),
        alive=np.ones(n, dtype=bool),
        byzantine=np.zeros(n, dtype=bool),
    )
    g = torch.Generator().manual_seed(3)
    scale = torch.logspace(-6, 6, n).unsqueeze(-1)
    x, x_hat = torch.randn(n, P, generator=g) * scale, torch.randn(n, P, generator=g) * scale
    got = x.clone()
    SparseMixer(fused=fused).mix(got, x_hat, plan, gamma=1.0)
    assert torch.equal(got, _reference(x, x_hat, plan, 1.0))


@pytest.mark.parametrize("rows", [1, 7, 40])
def test_large_regular_swarms_mixed_block_by_block_give_the_same_bits(
    rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a size, the torch formulation mixes a regular graph's receivers a block of rows at
    a time (sums in cache); shrinking the block makes 40 peers take that path, uneven last
    block included."""
    import sim.engines.mixer as mixer_module

    edges = mixing_edges(nx.random_regular_graph(4, 40, seed=2))
    plan = dataclasses.replace(
        _plan(np.ones(len(edges.src), dtype=bool)),
        src=edges.src.astype(np.int64),
        dst=edges.dst.astype(np.int64),
        weight=edges.weight.copy(),
        alive=np.ones(edges.n, dtype=bool),
        byzantine=np.zeros(edges.n, dtype=bool),
    )
    g = torch.Generator().manual_seed(5)
    scale = torch.logspace(-4, 4, edges.n).unsqueeze(-1)
    x, x_hat = torch.randn(edges.n, P, generator=g) * scale, torch.randn(edges.n, P, generator=g)
    expected = _reference(x, x_hat, plan, 0.6)
    monkeypatch.setattr(mixer_module, "_BLOCK_BYTES", 8 * P * rows)
    blocks: list[int] = []
    real = SparseMixer._mix_blocks

    def counted(self: SparseMixer, *args: Any, **kwargs: Any) -> None:
        blocks.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(SparseMixer, "_mix_blocks", counted)
    got = x.clone()
    SparseMixer(fused=False).mix(got, x_hat, plan, gamma=0.6)
    assert blocks == ([1] if rows < 40 else [])
    assert torch.equal(got, expected)


def _regular_plan(n: int, weight: np.ndarray | None = None) -> RoundPlan:
    edges = mixing_edges(nx.random_regular_graph(4, n, seed=2))
    return dataclasses.replace(
        _plan(np.ones(len(edges.src), dtype=bool)),
        src=edges.src.astype(np.int64),
        dst=edges.dst.astype(np.int64),
        weight=edges.weight.copy() if weight is None else weight,
        alive=np.ones(edges.n, dtype=bool),
        byzantine=np.zeros(edges.n, dtype=bool),
    )


def _signed_zeros(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Models and copies whose first columns are zeros of both signs (the last bits a sum
    started from +0.0 instead of its first term would change), the rest spread over 1e-4..1e4."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-4, 4, n).unsqueeze(-1)
    x, x_hat = torch.randn(n, P, generator=g) * scale, torch.randn(n, P, generator=g)
    signs = torch.randint(0, 2, (2, n, 4), generator=g).float() * 2 - 1
    x[:, :4], x_hat[:, :4] = 0.0 * signs[0], 0.0 * signs[1]
    x_hat[: n // 2, 4:8] = -0.0  # all of some receivers' neighbours -0.0
    return x, x_hat


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("rows", [7, 1000])
@pytest.mark.parametrize("uneven", [False, True])
def test_regular_fast_paths_give_the_per_peer_bits_zero_signs_included(
    wide: bool, rows: int, uneven: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every way the torch formulation mixes a regular graph (whole, or block by block from a
    float64 widening or from float32 gathers; the self term folded into one addcmul_ when
    total * x_hat is exact, or rounded first when weights of many bits make it inexact) gives
    the reference's bits, signed zeros included (compared as integers)."""
    import sim.engines.mixer as mixer_module

    n = 40
    plan = _regular_plan(n)
    if uneven:  # weights far apart in scale: their float64 totals need more than 29 bits
        weight = np.linspace(0.011, 0.2337, len(plan.src))
        weight[::3] = 1.37e-6
        plan = dataclasses.replace(plan, weight=weight)
    x, x_hat = _signed_zeros(n, seed=7)
    monkeypatch.setattr(mixer_module, "_BLOCK_BYTES", 8 * P * rows)
    monkeypatch.setattr(mixer_module, "_WIDE_BYTES", 1 << 30 if wide else 0)
    mixer = SparseMixer(fused=False)
    for gamma in (1.0, 0.6):
        got = x.clone()
        mixer.mix(got, x_hat, plan, gamma=gamma)
        assert mixer._short is not uneven
        expected = _reference(x, x_hat, plan, gamma)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32))
        assert not torch.equal(got, x)


def test_irregular_and_masked_mixing_give_the_per_peer_bits_zero_signs_included() -> None:
    """The general path (receivers with different numbers of messages, some none) with the
    self term folded in or not: the reference's bits, compared as integers."""
    x, x_hat = _signed_zeros(N, seed=9)
    mix = np.ones(len(SRC), dtype=bool)
    mix[[0, 6]] = False  # peer 1 hears from 4 only, peer 0 from 5 only
    long = WEIGHT.copy()
    long[::2] = 3.1e-7
    for weight in (np.full(len(SRC), 0.25), long):  # short totals, then long ones
        plan = dataclasses.replace(_plan(mix), weight=weight)
        got = x.clone()
        mixer = SparseMixer(fused=False)
        mixer.mix(got, x_hat, plan, gamma=0.8)
        assert mixer._short is (weight is not long)
        expected = _reference(x, x_hat, plan, 0.8)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32))


@pytest.mark.parametrize("uneven", [False, True])
@pytest.mark.parametrize("n", [40, N])
def test_the_fused_kernel_gives_the_per_peer_bits_zero_signs_included(uneven: bool, n: int) -> None:
    """The CPU kernel on a regular graph and on the irregular, masked one (a receiver hearing
    nothing), with weights whose float64 totals are short or need many bits, both gammas: the
    reference's bits, signed zeros included (compared as integers)."""
    plan = _regular_plan(n) if n == 40 else _plan((DST != 2) & (np.arange(len(SRC)) % 5 != 0))
    if uneven:
        weight = np.linspace(0.011, 0.2337, len(plan.src))
        weight[::3] = 1.37e-6
        plan = dataclasses.replace(plan, weight=weight)
    x, x_hat = _signed_zeros(n, seed=11)
    mixer = SparseMixer()
    for gamma in (1.0, 0.6):
        got = x.clone()
        mixer.mix(got, x_hat, plan, gamma=gamma)
        expected = _reference(x, x_hat, plan, gamma)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32))
        assert not torch.equal(got, x)
    assert mixer._slots == []  # the torch formulation never ran


def test_the_fused_kernel_follows_a_changed_mask() -> None:
    """A plan with other edges (a dropped message) must not reuse the last plan's rows."""
    x, x_hat = _signed_zeros(N, seed=13)
    mixer = SparseMixer()
    everything = np.ones(len(SRC), dtype=bool)
    dropped = everything.copy()
    dropped[[2, 7]] = False
    for mix in (everything, dropped, everything):
        got = x.clone()
        mixer.mix(got, x_hat, _plan(mix), gamma=0.9)
        assert torch.equal(got, _reference(x, x_hat, _plan(mix), 0.9))
