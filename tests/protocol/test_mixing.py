"""Mixing rules against dense matrix references."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.mixing import (
    coordinate_median,
    gossip_update,
    neighbour_mix,
    received_weights,
    sparse_neighbour_mix,
    trimmed_mean,
)


def random_graph(n: int, edges: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Directed edges src -> dst without self loops or repeats, and weights; plus dense W."""
    g = torch.Generator().manual_seed(seed)
    pairs = sorted({(int(a), int(b)) for a, b in torch.randint(0, n, (edges, 2), generator=g)})
    pairs = [(a, b) for a, b in pairs if a != b]
    src = torch.tensor([a for a, _ in pairs], dtype=torch.long)
    dst = torch.tensor([b for _, b in pairs], dtype=torch.long)
    weight = torch.rand(len(pairs), generator=g, dtype=torch.float64) / n
    return src, dst, weight


def dense_matrix(
    n: int, src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Row-stochastic W: W[dst, src] = weight, the rest of each row on the diagonal."""
    w = torch.zeros(n, n, dtype=torch.float64)
    for s, d, value in zip(src.tolist(), dst.tolist(), weight.tolist(), strict=True):
        w[d, s] += value
    return w + torch.diag(1 - w.sum(dim=1))


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 12), edges=st.integers(1, 40), p=st.integers(1, 6), seed=st.integers(0, 999)
)
def test_gossip_with_x_hat_x_and_gamma_one_is_dense_averaging(
    n: int, edges: int, p: int, seed: int
) -> None:
    src, dst, weight = random_graph(n, edges, seed)
    x = torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    mix, total = sparse_neighbour_mix(src, dst, weight, x)
    out = gossip_update(x, x, mix, total, gamma=1.0)
    torch.testing.assert_close(out, dense_matrix(n, src, dst, weight) @ x)
    for i in range(n):  # the daemon's path: one peer at a time
        into = dst == i
        mix_i, total_i = neighbour_mix(weight[into], x[src[into]])
        torch.testing.assert_close(gossip_update(x[i], x[i], mix_i, total_i, gamma=1.0), out[i])


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 10), edges=st.integers(0, 30), seed=st.integers(0, 999))
def test_sparse_mix_matches_a_dense_reference_with_dropped_edges(
    n: int, edges: int, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (edges,), generator=g)  # repeats and self loops allowed
    dst = torch.randint(0, n, (edges,), generator=g)
    weight = torch.rand(edges, generator=g)
    mask = torch.rand(edges, generator=g) < 0.7
    x_hat = torch.randn(n, 3, generator=g)
    expected_mix, expected_total = torch.zeros(n, 3), torch.zeros(n)
    for e in range(edges):
        if mask[e]:
            expected_mix[dst[e]] += weight[e] * x_hat[src[e]]
            expected_total[dst[e]] += weight[e]
    mix, total = sparse_neighbour_mix(src, dst, weight, x_hat, mask)
    torch.testing.assert_close(mix, expected_mix)
    torch.testing.assert_close(total, expected_total)


def test_gossip_update_is_the_choco_step() -> None:
    x, x_hat = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0])
    out = gossip_update(x, x_hat, torch.tensor([3.0, 0.0]), 0.5, gamma=0.1)
    # x + 0.1 * ([3, 0] - 0.5 * [0.5, 1])
    torch.testing.assert_close(out, torch.tensor([1.275, 1.95]))
    batched = gossip_update(
        torch.stack([x, x]),
        torch.stack([x_hat, x_hat]),
        torch.zeros(2, 2),
        torch.tensor([0.0, 1.0]),
        gamma=1.0,
    )
    torch.testing.assert_close(batched, torch.stack([x, x - x_hat]))


def test_neighbour_mix_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[K\] and x_hats \[K, P\]"):
        neighbour_mix(torch.ones(2), torch.ones(3, 4))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 8))
def test_received_weights_rules(seed: int, k: int) -> None:
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(3, k, generator=g, dtype=torch.float64)
    received = torch.rand(3, k, generator=g) < 0.5
    kept = received_weights(weights, received)
    assert torch.equal(kept, weights * received)
    renormalised = received_weights(weights, received, rule="renormalise")
    for row in range(3):
        if received[row].any():
            torch.testing.assert_close(renormalised[row].sum(), weights[row].sum())
            ratio = renormalised[row][received[row]] / weights[row][received[row]]
            torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))  # proportions kept
        else:
            assert torch.equal(renormalised[row], torch.zeros(k, dtype=torch.float64))
        assert torch.equal(
            renormalised[row][~received[row]], torch.zeros_like(weights[row][~received[row]])
        )


def test_self_rule_keeps_missing_weight_with_the_peer() -> None:
    # Peer 0 hears from 1 and 2 (weights 1/3 each) but only 2 arrives: W row becomes [2/3, 0, 1/3].
    x = torch.tensor([[3.0], [6.0], [9.0]], dtype=torch.float64)
    w = received_weights(torch.tensor([1 / 3, 1 / 3]), torch.tensor([False, True])).double()
    mix, total = neighbour_mix(w, x[1:])
    out = gossip_update(x[0], x[0], mix, total, gamma=1.0)
    torch.testing.assert_close(out, torch.tensor([2 / 3 * 3 + 1 / 3 * 9], dtype=torch.float64))


def test_received_weights_rejects_unknown_rules() -> None:
    with pytest.raises(ValueError, match="'mean'"):
        received_weights(torch.ones(2), torch.ones(2, dtype=torch.bool), rule="mean")  # type: ignore[arg-type]


def test_robust_aggregators_ignore_a_minority_of_outliers() -> None:
    honest = torch.tensor([[1.0, 2.0], [1.2, 2.2], [0.8, 1.8], [1.1, 2.1]])
    attacked = torch.cat([honest, torch.tensor([[1e6, -1e6]])])
    median = coordinate_median(attacked)
    assert torch.equal(median, torch.tensor([1.1, 2.0]))
    expected = torch.tensor([(1.0 + 1.1 + 1.2) / 3, (1.8 + 2.0 + 2.1) / 3])
    torch.testing.assert_close(trimmed_mean(attacked, trim=1), expected)
    torch.testing.assert_close(trimmed_mean(honest, trim=0), honest.mean(dim=0))
    with pytest.raises(ValueError, match="trim=2"):
        trimmed_mean(honest, trim=2)
