"""The shared mixing functions against dense matrix references, and their fixed arithmetic."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.mixing import choco_update, mix_weights, neighbour_sum


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


def _per_peer(
    x: torch.Tensor, x_hat: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
    weight: torch.Tensor, *, gamma: float,
) -> torch.Tensor:  # fmt: skip
    """Every peer's step through the [P] functions, as a daemon computes it."""
    out = x.clone()
    w = mix_weights(weight, x.dtype)
    for i in range(x.shape[0]):
        into = dst == i
        if into.any():
            mixed, total = neighbour_sum(w[into], x_hat[src[into]])
            out[i] = choco_update(x[i], x_hat[i], mixed, total, gamma=gamma)
    return out


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 12), edges=st.integers(1, 40), p=st.integers(1, 6), seed=st.integers(0, 999)
)
def test_gossip_with_x_hat_x_and_gamma_one_is_dense_averaging(
    n: int, edges: int, p: int, seed: int
) -> None:
    src, dst, weight = random_graph(n, edges, seed)
    x = torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = _per_peer(x, x, src, dst, weight, gamma=1.0)
    torch.testing.assert_close(out, dense_matrix(n, src, dst, weight) @ x)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 6), p=st.integers(1, 70), seed=st.integers(0, 999))
def test_the_batch_form_equals_the_per_peer_form_bit_for_bit(k: int, p: int, seed: int) -> None:
    """[N, K, P] at once gives each row's [K, P] result exactly: the simulator's batch is what
    N daemons compute, whatever the vector width or kernel used for each shape."""
    g = torch.Generator().manual_seed(seed)
    n = 4
    weights = mix_weights(torch.rand(n, k, generator=g, dtype=torch.float64), torch.float32)
    copies = torch.randn(n, k, p, generator=g) * torch.logspace(-6, 6, p)
    x, x_hat = torch.randn(n, p, generator=g), torch.randn(n, p, generator=g)
    mixed, total = neighbour_sum(weights, copies)
    batch = choco_update(x, x_hat, mixed.clone(), total, gamma=0.37)  # it overwrites mixed
    for i in range(n):
        mixed_i, total_i = neighbour_sum(weights[i], copies[i])
        assert torch.equal(mixed_i, mixed[i])
        assert torch.equal(total_i, total[i])
        assert torch.equal(choco_update(x[i], x_hat[i], mixed_i, total_i, gamma=0.37), batch[i])
        # a daemon's copies, each where it lies (no stacking): the same bits again
        listed, listed_total = neighbour_sum(weights[i], [copies[i, j].clone() for j in range(k)])
        assert torch.equal(listed.view(torch.int64), mixed[i].view(torch.int64))
        assert torch.equal(listed_total, total_i)


def test_float32_models_are_mixed_in_float64_and_rounded_once() -> None:
    """A float32 sum would lose the small term; float64 keeps it until the one rounding."""
    x = torch.tensor([1.0])
    copies = torch.tensor([[2.0**25], [1.0], [-(2.0**25)]])
    weights = mix_weights(torch.tensor([0.25, 0.25, 0.25], dtype=torch.float64), torch.float32)
    mixed, total = neighbour_sum(weights, copies)
    out = choco_update(x, x, mixed, total, gamma=1.0)
    # exact: 1 + (0.25 * 2**25 + 0.25 - 0.25 * 2**25) - 0.75 * 1 = 0.5
    assert out.dtype == torch.float32
    assert out.item() == 0.5
    assert (mixed.dtype, total.dtype) == (torch.float64, torch.float64)


def test_choco_update_is_the_choco_step() -> None:
    x, x_hat = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0])
    out = choco_update(
        x, x_hat, torch.tensor([3.0, 0.0]).double(), torch.tensor(0.5).double(), gamma=0.1
    )
    # x + 0.1 * ([3, 0] - 0.5 * [0.5, 1])
    torch.testing.assert_close(out, torch.tensor([1.275, 1.95]))
    batched = choco_update(
        torch.stack([x, x]),
        torch.stack([x_hat, x_hat]),
        torch.zeros(2, 2, dtype=torch.float64),
        torch.tensor([0.0, 1.0], dtype=torch.float64),
        gamma=1.0,
    )
    torch.testing.assert_close(batched, torch.stack([x, x - x_hat]))


def test_mixing_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"weights \[K\] and copies \[K, P\]"):
        neighbour_sum(torch.ones(2), torch.ones(3, 4))
    with pytest.raises(ValueError, match="K >= 1"):
        neighbour_sum(torch.ones(0), torch.ones(0, 4))
    with pytest.raises(ValueError, match=r"and \[\(4,\), \(5,\)\]"):
        neighbour_sum(torch.ones(2), [torch.ones(4), torch.ones(5)])
    with pytest.raises(ValueError, match="copies"):
        neighbour_sum(torch.ones(3), [torch.ones(4), torch.ones(4)])
    with pytest.raises(ValueError, match="copies"):
        neighbour_sum(torch.ones(1, 1), [torch.ones(4)])  # a batch needs [N, K, P]
    with pytest.raises(ValueError, match="K >= 1"):
        neighbour_sum(torch.ones(0), [])
    with pytest.raises(ValueError, match="one shape"):
        choco_update(torch.ones(3), torch.ones(3), torch.ones(4), torch.tensor(1.0), gamma=1.0)


def test_neighbour_sum_into_kept_memory_gives_the_same_bits() -> None:
    gen = torch.Generator().manual_seed(3)
    weights = mix_weights(torch.tensor([0.2, 0.3, 0.1], dtype=torch.float64), torch.float32)
    copies = torch.randn(3, 1000, generator=gen)
    fresh, fresh_total = neighbour_sum(weights, copies)
    out = torch.full((1000,), float("nan"), dtype=torch.float64)
    term = torch.full((1000,), float("nan"), dtype=torch.float64)
    mixed, total = neighbour_sum(weights, copies, out=out, term=term)
    assert mixed.data_ptr() == out.data_ptr()
    assert torch.equal(mixed, fresh)
    assert torch.equal(total, fresh_total)
