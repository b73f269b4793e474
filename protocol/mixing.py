"""Mixing: how a peer combines its model with its neighbours', as pure functions on tensors.

The daemon and both simulator engines call these, so they compute the same numbers: the daemon
and the loop engine with one peer's vectors [P], the vectorised engine on a batch [N, P]. The
CHOCO consensus step of peer i (Koloskova et al. 2019) is

    x_i <- x_i + gamma * (sum_k w_k x_hat_k - (sum_k w_k) x_hat_i)

over the in-neighbours k whose public copies x_hat_k arrived; weight not received stays with the
peer itself, so the effective mixing matrix stays row-stochastic.

The arithmetic is fixed, so that every caller gets the same bits:

1. each weight is rounded to the model's dtype, then widened to float64 (:func:`mix_weights`);
2. ``mixed = w_0 x_hat_0 + w_1 x_hat_1 + ...`` and ``total = w_0 + w_1 + ...`` in float64, added
   left to right in the order the neighbours are given, starting from the first term
   (:func:`neighbour_sum`);
3. ``x + gamma * (mixed - total * x_hat_i)`` in float64, one operation at a time, rounded once to
   the model's dtype (:func:`choco_update`).

For float32 models every product in step 2 is exact in float64 (24-bit by 24-bit significands),
so no fused multiply-add, vector width or loop order inside a kernel can change a result; each
other operation is one correctly rounded IEEE operation. The only freedom left is the order of
the additions, which callers fix: neighbours in graph node order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from protocol.types import Vector

__all__ = ["choco_update", "mix_weights", "neighbour_sum"]

WIDE = torch.float64
"""The dtype the sums are carried out in."""


def mix_weights(weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Mixing weights rounded to the model's ``dtype``, then widened to float64 (step 1).

    >>> mix_weights(torch.tensor([1 / 3], dtype=torch.float64), torch.float32).item()
    0.3333333432674408
    """
    return weights.to(dtype).to(WIDE)


def neighbour_sum(
    weights: torch.Tensor,
    copies: torch.Tensor | Sequence[torch.Tensor],
    *,
    out: torch.Tensor | None = None,
    term: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_k w_k copies_k, sum_k w_k)`` in float64, added in order k = 0, 1, ... (step 2).

    One peer: weights [K], copies [K, P] (or a sequence of K vectors [P], not stacked) -> ([P],
    0-d). A batch: weights [N, K], copies [N, K, P] -> ([N, P], [N]). ``weights`` come from
    :func:`mix_weights`; K >= 1. ``out`` and ``term`` (float64, the result's shape) are working
    memory a caller keeps between calls: the sum is written into ``out``; without them both are
    allocated.

    >>> neighbour_sum(torch.tensor([0.25, 0.5]), torch.tensor([[4.0, 0.0], [2.0, 2.0]]))
    (tensor([2., 1.], dtype=torch.float64), tensor(0.7500, dtype=torch.float64))
    >>> pair = [torch.tensor([4.0, 0.0]), torch.tensor([2.0, 2.0])]
    >>> neighbour_sum(torch.tensor([0.25, 0.5]), pair)[0]
    tensor([2., 1.], dtype=torch.float64)
    """
    batch = weights.dim() - 1
    if isinstance(copies, torch.Tensor):
        fits = copies.dim() == weights.dim() + 1 and copies.shape[:-1] == weights.shape
        shown: object = tuple(copies.shape)
        rows = copies.unbind(-2) if fits else ()  # views: copy k of every peer
    else:
        rows = tuple(copies)
        fits = batch == 0 and len(rows) == weights.shape[0]
        fits = fits and all(r.dim() == 1 and r.shape == rows[0].shape for r in rows)
        shown = [tuple(r.shape) for r in rows]
    if batch not in (0, 1) or not fits or weights.shape[-1] == 0:
        raise ValueError(
            f"expected weights [K] and copies [K, P], or [N, K] and [N, K, P] with K >= 1; got "
            f"{tuple(weights.shape)} and {shown}"
        )
    w = weights.to(WIDE)
    w_0 = w[..., 0]
    # widened first: a 0-d float64 weight would not promote a float32 copy
    # a widening copy is exact: into kept memory or a fresh tensor, the same bits
    first = rows[0]
    mixed = first.to(WIDE, copy=True) if out is None else out.copy_(first)
    mixed.mul_(w_0.unsqueeze(-1) if batch else w_0)
    total = w_0.clone()
    if term is None:
        term = torch.empty_like(mixed)
    for k in range(1, weights.shape[-1]):
        w_k = w[..., k]
        term.copy_(rows[k])
        term.mul_(w_k.unsqueeze(-1) if batch else w_k)
        mixed.add_(term)
        total.add_(w_k)
    return mixed, total


def choco_update(
    x: Vector,
    x_hat: Vector,
    mixed: torch.Tensor,
    total: torch.Tensor,
    *,
    gamma: float,
    scratch: torch.Tensor | None = None,
    out: Vector | None = None,
) -> Vector:
    """``x + gamma * (mixed - total * x_hat)`` in float64, rounded once to ``x.dtype`` (step 3).

    ``x`` and ``x_hat`` are [P] or [N, P]; ``mixed`` and ``total`` come from
    :func:`neighbour_sum` (``total`` 0-d for [P], [N] for a batch). ``mixed`` serves as working
    memory and is overwritten. For large batches, ``scratch`` (float64, x's shape) saves an
    allocation and ``out`` (x's dtype and shape, may be ``x`` itself) receives the result. With
    ``x_hat == x`` and ``gamma == 1`` this is weighted averaging with self weight ``1 - total``:

    >>> x = torch.tensor([[0.0], [3.0]])
    >>> mixed, total = torch.tensor([[1.5], [0.0]]), torch.tensor([0.5, 0.0])
    >>> choco_update(x, x, mixed.double(), total.double(), gamma=1.0)
    tensor([[1.5000],
            [3.0000]])
    """
    if (
        x.shape != x_hat.shape
        or mixed.shape != x.shape
        or mixed.dtype != WIDE
        or total.dim() != x.dim() - 1
    ):
        raise ValueError(
            f"expected x, x_hat and a float64 mixed of one shape [P] or [N, P], and total [] or "
            f"[N]; got {tuple(x.shape)}, {tuple(x_hat.shape)}, {mixed.dtype} "
            f"{tuple(mixed.shape)}, {tuple(total.shape)}"
        )
    weight = total.to(WIDE).unsqueeze(-1) if x.dim() == 2 else total.to(WIDE)
    step = torch.empty(x.shape, dtype=WIDE, device=x.device) if scratch is None else scratch
    # One operation at a time, each rounded once; widening copies are exact. (Mixed-dtype
    # operations would save the copies but run 2-6x slower on CPU than same-dtype ones.)
    step.copy_(x_hat)
    step.mul_(weight)  # total * x_hat
    mixed.sub_(step)  # mixed - total * x_hat
    if gamma != 1.0:  # (times 1.0 changes no bit)
        mixed.mul_(gamma)
    step.copy_(x)
    step.add_(mixed)  # x + gamma * (...)
    if out is None:
        return step.to(x.dtype)
    return out.copy_(step)
