"""Mixing: how a peer combines its model with its neighbours', as pure functions on tensors.

Both engines call these: the daemon with one peer's vectors [P], the vectorised simulator with a
batch [N, P]. The CHOCO consensus step of peer i (Koloskova et al. 2019) is

    x_i <- x_i + gamma * (sum_j w_ij x_hat_j - (sum_j w_ij) x_hat_i)

over the neighbours j != i whose public copies x_hat_j arrived; weight not received stays with
the peer itself, so the effective mixing matrix stays row-stochastic.
"""

from __future__ import annotations

from typing import Literal

import torch

from protocol.types import Vector

__all__ = [
    "coordinate_median",
    "gossip_update",
    "neighbour_mix",
    "received_weights",
    "sparse_neighbour_mix",
    "trimmed_mean",
]


def gossip_update(
    x: Vector,
    x_hat: Vector,
    neighbour_mix: Vector,
    neighbour_weight: float | torch.Tensor,
    *,
    gamma: float,
) -> Vector:
    """``x + gamma * (neighbour_mix - neighbour_weight * x_hat)``, for [P] or a batch [N, P].

    ``neighbour_weight`` is a float or 0-d tensor for [P], shape [N] for a batch. With
    ``x_hat == x`` and ``gamma == 1`` this is weighted averaging with the self weight
    ``1 - neighbour_weight``:

    >>> x = torch.tensor([[0.0], [3.0]])
    >>> gossip_update(x, x, torch.tensor([[1.5], [0.0]]), torch.tensor([0.5, 0.0]), gamma=1.0)
    tensor([[1.5000],
            [3.0000]])
    """
    weight = torch.as_tensor(neighbour_weight, dtype=x.dtype)
    if x.dim() == 2 and weight.dim() == 1:
        weight = weight.unsqueeze(-1)
    return x + gamma * (neighbour_mix - weight * x_hat)


def neighbour_mix(weights: torch.Tensor, x_hats: torch.Tensor) -> tuple[Vector, torch.Tensor]:
    """``(sum_j w_j x_hat_j, sum_j w_j)`` for one peer: weights [K], public copies [K, P].

    >>> neighbour_mix(torch.tensor([0.25, 0.5]), torch.tensor([[4.0, 0.0], [2.0, 2.0]]))
    (tensor([2., 1.]), tensor(0.7500))
    """
    if weights.dim() != 1 or x_hats.dim() != 2 or x_hats.shape[0] != weights.shape[0]:
        raise ValueError(
            f"expected weights [K] and x_hats [K, P], got {tuple(weights.shape)} and "
            f"{tuple(x_hats.shape)}"
        )
    w = weights.to(x_hats.dtype)
    return w @ x_hats, w.sum()


def sparse_neighbour_mix(
    src: torch.Tensor,
    dst: torch.Tensor,
    weight: torch.Tensor,
    x_hat: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per peer, the weighted sum of in-neighbours' public copies and the total weight received.

    Directed edge e carries ``weight[e] * x_hat[src[e]]`` to ``dst[e]`` unless ``mask[e]`` is
    False (a dropped message). Returns ([N, P], [N]). Repeated edges add up.

    >>> src, dst = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 1])
    >>> x_hat = torch.tensor([[1.0], [10.0], [100.0]])
    >>> mix, total = sparse_neighbour_mix(src, dst, torch.full((3,), 0.5), x_hat)
    >>> mix.flatten().tolist(), total.tolist()
    ([0.0, 50.5, 5.0], [0.0, 1.0, 0.5])
    """
    if not src.shape == dst.shape == weight.shape or src.dim() != 1:
        raise ValueError(
            f"src, dst and weight must share one shape [E], got {tuple(src.shape)}, "
            f"{tuple(dst.shape)}, {tuple(weight.shape)}"
        )
    w = weight.to(x_hat.dtype)
    if mask is not None:
        w = torch.where(mask, w, torch.zeros_like(w))
    n = x_hat.shape[0]
    total = torch.zeros(n, dtype=x_hat.dtype).index_add_(0, dst, w)
    # A sparse [N, N] product avoids the [E, P] temporary that index_add_ over edges needs. On 2
    # cores it was 3 to 8 times faster: N=1,000 P=50,000 degree 4, 124 ms against 458 ms;
    # N=10,000 P=1,000, 33 against 96 ms; N=2,000 P=20,000 degree 8, 132 against 1,098 ms.
    matrix = torch.sparse_coo_tensor(
        torch.stack([dst, src]), w, (n, n), check_invariants=True
    ).coalesce()
    return torch.sparse.mm(matrix, x_hat), total


def received_weights(
    weights: torch.Tensor,
    received: torch.Tensor,
    *,
    rule: Literal["self", "renormalise"] = "self",
) -> torch.Tensor:
    """Neighbour weights [..., K] restricted to the neighbours actually received.

    ``"self"`` zeroes the missing ones (gossip_update leaves their weight with the peer);
    ``"renormalise"`` scales the received ones up to the original neighbour total (all zero when
    nothing arrived).

    >>> w, got = torch.tensor([0.25, 0.25, 0.5]), torch.tensor([True, False, True])
    >>> received_weights(w, got)
    tensor([0.2500, 0.0000, 0.5000])
    >>> received_weights(w, got, rule="renormalise")
    tensor([0.3333, 0.0000, 0.6667])
    >>> received_weights(w, torch.zeros(3, dtype=torch.bool), rule="renormalise")
    tensor([0., 0., 0.])
    """
    kept = torch.where(received, weights, torch.zeros_like(weights))
    if rule == "self":
        return kept
    if rule != "renormalise":
        raise ValueError(f"unknown rule {rule!r}; expected 'self' or 'renormalise'")
    total = weights.sum(dim=-1, keepdim=True)
    got = kept.sum(dim=-1, keepdim=True)
    factor = torch.where(got > 0, total / torch.where(got > 0, got, 1.0), 0.0)
    return kept * factor


def coordinate_median(x_hats: torch.Tensor) -> Vector:
    """Coordinate-wise median of K models [K, P] (the lower median for even K).

    Robust to fewer than K/2 Byzantine senders per coordinate.

    >>> coordinate_median(torch.tensor([[1.0, 5.0], [2.0, -100.0], [1e9, 6.0]]))
    tensor([2., 5.])
    """
    return x_hats.median(dim=0).values


def trimmed_mean(x_hats: torch.Tensor, *, trim: int) -> Vector:
    """Mean of K models [K, P] per coordinate after dropping the ``trim`` largest and smallest.

    >>> trimmed_mean(torch.tensor([[1.0], [2.0], [3.0], [1e9]]), trim=1)
    tensor([2.5000])
    """
    k = x_hats.shape[0]
    if trim < 0 or 2 * trim >= k:
        raise ValueError(f"trim={trim} leaves no model of {k}; expected 0 <= trim < {k}/2")
    ordered = x_hats.sort(dim=0).values
    return ordered[trim : k - trim].mean(dim=0)
