"""Aggregation rules: how a peer combines its public copy with its neighbours', robustly or not.

Every rule returns what :func:`protocol.mixing.neighbour_sum` returns, ``(mixed, total)`` in
float64, so that :func:`protocol.mixing.choco_update` turns it into the new model
``x + gamma * (mixed - total * x_hat)``. One peer: ``x_hat`` [P], ``weights`` [K] (from
:func:`protocol.mixing.mix_weights`), ``copies`` [K, P]; a batch of peers with K neighbours
each: [N, P], [N, K], [N, K, P]. The daemon, the loop engine and the vector engine all call
:func:`aggregate`, on the public copies CHOCO maintains.

- ``mean``: today's weighted mixing, :func:`protocol.mixing.neighbour_sum` itself (same bits).
- ``clip[:tau=T | b=B][,fade=false]``: self-centred clipping (ClippedGossip, He, Karimireddy and
  Jaggi 2022): ``x_hat + sum_k w_k clip(x_hat_k - x_hat, tau)``, where ``clip(v, tau)`` scales
  ``v`` down to norm ``tau``. The radius ``tau`` is fixed, or adapts each round: with ``b=B`` the
  (B+1)-th largest neighbour distance (``b=1``, the second largest, is the reference code's
  rule); by default the largest distance within :data:`OUTLIER_SPREAD` times the median one.
  By default a neighbour beyond the radius *fades*: it pulls ``w_k tau^2 / d_k`` instead of
  clipping's ``w_k tau``, never more, and less the farther it is (``fade=false``: the paper's
  clipping). Why: a far attacker clipped to ``tau`` still pulls ``w_k tau`` in the same
  direction every round, a steady bias that docs/robustness.md measures.
- ``trimmed_mean:b=B``: per coordinate over the peer's own copy and its K neighbours', drop the
  B largest and B smallest values and average the rest (B is capped at K // 2, so at least one
  value remains).
- ``median``: per coordinate over its own copy and its neighbours' (the mean of the two middle
  values when there are an even number).

The robust rules return ``total = 1``: the result replaces the weighted average, whose weights
only ``clip`` uses. Sorting is exact and every sum is carried out in float64 in a fixed order
(neighbours as given), so a peer gets the same bits alone or inside a batch.
"""

from __future__ import annotations

import torch

from protocol.aggregator_names import check_aggregator_spec
from protocol.mixing import WIDE, neighbour_sum
from protocol.spec import Spec
from protocol.types import Vector

__all__ = ["MEAN", "aggregate", "clip_radius", "clipped", "coordinate_median", "trimmed_mean"]

MEAN = Spec("mean")
"""The default rule: today's weighted mixing."""

OUTLIER_SPREAD = 2.0
"""``clip``'s adaptive radius: a neighbour farther than this many times the median neighbour
distance is an outlier, clipped to the farthest neighbour that is not."""


def aggregate(
    rule: Spec,
    x_hat: Vector,
    weights: torch.Tensor,
    copies: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mixed, total)`` for :func:`protocol.mixing.choco_update` under ``rule``.

    >>> x_hat, w = torch.tensor([0.0]), torch.tensor([0.25, 0.25]).double()
    >>> copies = torch.tensor([[1.0], [100.0]])
    >>> aggregate(Spec("mean"), x_hat, w, copies)
    (tensor([25.2500], dtype=torch.float64), tensor(0.5000, dtype=torch.float64))
    >>> aggregate(Spec("clip", {"tau": 2.0, "fade": False}), x_hat, w, copies)
    (tensor([0.7500], dtype=torch.float64), tensor(1., dtype=torch.float64))
    >>> aggregate(Spec("clip", {"tau": 2.0}), x_hat, w, copies)  # the far one fades
    (tensor([0.2600], dtype=torch.float64), tensor(1., dtype=torch.float64))
    >>> aggregate(Spec("median"), x_hat, w, copies)[0]
    tensor([1.], dtype=torch.float64)
    """
    if rule.name == "mean":
        return neighbour_sum(weights, copies)
    _check_shapes(x_hat, weights, copies)
    total = torch.ones(x_hat.shape[:-1], dtype=WIDE, device=x_hat.device)
    if rule.name == "clip":
        tau = rule.params.get("tau")
        b = rule.params.get("b")
        return (
            clipped(
                x_hat,
                weights,
                copies,
                tau=None if tau is None else float(tau),
                b=None if b is None else int(b),
                fade=bool(rule.params.get("fade", True)),
            ),
            total,
        )
    if rule.name == "trimmed_mean":
        return trimmed_mean(_with_self(x_hat, copies), b=int(rule.params["b"])), total
    if rule.name == "median":
        return coordinate_median(_with_self(x_hat, copies)), total
    check_aggregator_spec(rule)  # raises ConfigError naming the rule
    raise AssertionError(f"aggregator {rule.name!r} is known but not implemented")


def _check_shapes(x_hat: Vector, weights: torch.Tensor, copies: torch.Tensor) -> None:
    batch = x_hat.dim() - 1
    if (
        batch not in (0, 1)
        or weights.dim() != x_hat.dim()
        or copies.dim() != x_hat.dim() + 1
        or copies.shape[:-1] != weights.shape
        or copies.shape[-1] != x_hat.shape[-1]
        or weights.shape[:-1] != x_hat.shape[:-1]
        or weights.shape[-1] == 0
    ):
        raise ValueError(
            f"expected x_hat [P], weights [K], copies [K, P] or [N, P], [N, K], [N, K, P] with "
            f"K >= 1; got {tuple(x_hat.shape)}, {tuple(weights.shape)}, {tuple(copies.shape)}"
        )


def _with_self(x_hat: Vector, copies: torch.Tensor) -> torch.Tensor:
    return torch.cat([x_hat.unsqueeze(-2).to(copies.dtype), copies], dim=-2)


def clip_radius(
    distances: torch.Tensor, *, b: int | None = None, spread: float = OUTLIER_SPREAD
) -> torch.Tensor:
    """The adaptive radius of each row of neighbour distances [..., K].

    ``b`` given: the (b+1)-th largest distance (the smallest when K <= b), so the ``b`` farthest
    neighbours are clipped. ``b`` None: the largest distance within ``spread`` times the median
    (the lower median when K is even), so every neighbour farther than that is clipped to the
    farthest one that is not. The median is an honest distance as long as most neighbours are
    honest, whatever the others send.

    >>> clip_radius(torch.tensor([[3.0, 1.0, 2.0]]), b=1)
    tensor([2.])
    >>> clip_radius(torch.tensor([[1.0, 1.5, 2.5, 90.0, 1e6]]))
    tensor([2.5000])
    """
    k = distances.shape[-1]
    ranked = torch.sort(distances, dim=-1, descending=True).values
    if b is not None:
        return ranked[..., min(b, k - 1)]
    median = ranked[..., k // 2]
    inside = torch.where(ranked <= spread * median.unsqueeze(-1), ranked, 0.0)
    return inside.max(dim=-1).values


def clipped(
    x_hat: Vector,
    weights: torch.Tensor,
    copies: torch.Tensor,
    *,
    tau: float | None,
    b: int | None = None,
    fade: bool = True,
) -> torch.Tensor:
    """``x_hat + sum_k w_k s_k (copies_k - x_hat)`` in float64, summed in order k, where the
    scale ``s_k`` is 1 within the radius; beyond it, ``tau / d_k`` (clipping: the pull is
    ``w_k tau``) or, with ``fade``, ``(tau / d_k)^2`` (the pull ``w_k tau^2 / d_k`` shrinks as
    the neighbour gets farther, and never exceeds clipping's).

    ``tau`` None: :func:`clip_radius` of the neighbour distances with ``b``.

    >>> one = torch.ones(1).double()
    >>> clipped(torch.zeros(2), one, torch.tensor([[3.0, 4.0]]), tau=1.0, fade=False)
    tensor([0.6000, 0.8000], dtype=torch.float64)
    >>> clipped(torch.zeros(2), one, torch.tensor([[3.0, 4.0]]), tau=1.0)
    tensor([0.1200, 0.1600], dtype=torch.float64)
    """
    centre = x_hat.to(WIDE)
    diffs = copies.to(WIDE) - centre.unsqueeze(-2)
    distances = torch.sqrt((diffs * diffs).sum(dim=-1))  # [..., K]
    radius = (
        clip_radius(distances, b=b)
        if tau is None
        else torch.full(distances.shape[:-1], tau, dtype=WIDE, device=distances.device)
    )
    shrink = radius.unsqueeze(-1) / torch.where(distances > 0, distances, 1.0)
    scale = torch.where(distances > radius.unsqueeze(-1), shrink * shrink if fade else shrink, 1.0)
    factors = weights.to(WIDE) * scale  # [..., K]
    out = centre.clone()
    for k in range(copies.shape[-2]):
        out.add_(diffs[..., k, :] * factors[..., k].unsqueeze(-1))
    return out


def coordinate_median(values: torch.Tensor) -> torch.Tensor:
    """Per-coordinate median over dim -2 of ``values`` [..., M, P], in float64.

    >>> coordinate_median(torch.tensor([[1.0, 9.0], [3.0, 2.0], [2.0, 4.0], [8.0, 0.0]]))
    tensor([2.5000, 3.0000], dtype=torch.float64)
    """
    ranked = torch.sort(values, dim=-2).values.to(WIDE)
    m = values.shape[-2]
    if m % 2:
        return ranked[..., m // 2, :].clone()
    return (ranked[..., m // 2 - 1, :] + ranked[..., m // 2, :]) / 2


def trimmed_mean(values: torch.Tensor, *, b: int) -> torch.Tensor:
    """Per-coordinate mean over dim -2 of ``values`` [..., M, P] without the ``b`` largest and
    ``b`` smallest (``b`` capped at (M - 1) // 2), summed in float64 in sorted order.

    >>> trimmed_mean(torch.tensor([[1.0], [100.0], [2.0], [-50.0], [3.0]]), b=1)
    tensor([2.], dtype=torch.float64)
    """
    m = values.shape[-2]
    b = min(b, (m - 1) // 2)
    ranked = torch.sort(values, dim=-2).values
    out = ranked[..., b, :].to(WIDE, copy=True)
    for k in range(b + 1, m - b):
        out.add_(ranked[..., k, :])
    return out.div_(m - 2 * b)
