"""Flat parameter vectors: their layout (names, shapes, dtypes), views into them, and init."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import torch

from protocol.errors import ConfigError

__all__ = [
    "Layout",
    "LayoutEntry",
    "as_batch",
    "param_count",
    "split_views",
    "uniform_init",
    "xent_and_dlogits",
]

LayoutEntry: TypeAlias = tuple[str, tuple[int, ...], str]
"""(name, shape, dtype name) of one tensor, in PyTorch's naming, e.g. ("fc1.weight", (64, 784),
"float32"); the wire fingerprint is computed from the whole layout."""
Layout: TypeAlias = tuple[LayoutEntry, ...]


def param_count(layout: Layout) -> int:
    """Total number of scalars.

    >>> param_count((("w", (2, 3), "float32"), ("b", (2,), "float32")))
    8
    """
    return sum(math.prod(shape) for _, shape, _ in layout)


def split_views(params: torch.Tensor, layout: Layout) -> list[torch.Tensor]:
    """Views [N, *shape] into a contiguous [N, P] buffer, one per layout entry (no copy).

    >>> w, b = split_views(torch.arange(8.0).view(1, 8), (("w", (2, 3), "f"), ("b", (2,), "f")))
    >>> w.tolist(), b.tolist()
    ([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]], [[6.0, 7.0]])
    """
    views, start = [], 0
    for _, shape, _ in layout:
        size = math.prod(shape)
        views.append(params[:, start : start + size].view(params.shape[0], *shape))
        start += size
    return views


def uniform_init(layout: Layout, fan_ins: Sequence[int], *, seed: int) -> torch.Tensor:
    """PyTorch's default Linear/Conv init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
    biases alike, drawn tensor by tensor in layout order from one seeded generator; float32 [P]."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for (_, shape, _), fan_in in zip(layout, fan_ins, strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        parts.append(torch.rand(math.prod(shape), generator=g).mul_(2 * bound).sub_(bound))
    return torch.cat(parts)


def as_batch(
    params: torch.Tensor, x: torch.Tensor, num_params: int
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Lift ([P], [B, D]) to ([1, P], [1, B, D]); pass ([N, P], [N, B, D]) through.

    Returns the two tensors and whether the input was a single peer's.
    """
    if params.shape[-1] != num_params:
        raise ConfigError(f"params have {params.shape[-1]} entries, the model needs {num_params}")
    if params.dim() == 1 and x.dim() == 2:
        return params.unsqueeze(0), x.unsqueeze(0), True
    if params.dim() == 2 and x.dim() == 3 and x.shape[0] == params.shape[0]:
        return params, x, False
    raise ConfigError(
        f"expected params [P] with x [B, D], or [N, P] with [N, B, D]; got "
        f"{tuple(params.shape)} and {tuple(x.shape)}"
    )


def xent_and_dlogits(
    z: torch.Tensor, y: torch.Tensor, scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy per peer [N] of class-major logits z [N, C, B] (labels y [N, B]), and
    ``scale`` times its gradient with respect to z (``scale`` a float or [N]), softmax - onehot.

    Class-major because the softmax then reduces over a middle dimension, which PyTorch
    vectorises across the batch; over a last dimension of 10 classes it was 20x slower on
    [1024, 32, 10] and dominated a logistic-regression step. z is not modified.

    >>> loss, dz = xent_and_dlogits(torch.zeros(1, 2, 1), torch.tensor([[1]]), 1.0)
    >>> round(float(loss[0]), 4), dz.flatten().tolist()
    (0.6931, [0.5, -0.5])
    """
    batch = z.shape[2]
    logp = torch.log_softmax(z, dim=1)
    labels = y.unsqueeze(1)
    picked = logp.gather(1, labels)
    loss = picked.mean((1, 2)).neg()
    dz = logp.exp_()
    dz.scatter_add_(1, labels, torch.full_like(picked, -1.0))
    if isinstance(scale, torch.Tensor):
        dz.mul_((scale / batch).view(-1, 1, 1))
    else:
        dz.mul_(scale / batch)
    return loss, dz
