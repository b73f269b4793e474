"""Per-round statistics and the pure metrics behind them.

>>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
>>> consensus_distance(x)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from peer.tasks.plugin import metric_key

__all__ = [
    "SwarmRoundStats",
    "consensus_distance",
    "finite",
    "finite_or_none",
    "fitted_contraction",
    "metric_prefix",
]


def metric_prefix(metric: str) -> str:
    """The prefix of a metric's keys in rounds.jsonl and summaries: ``acc`` for accuracy
    (``acc_mean``, ``acc_min``, ...), else the metric's short name (``mse_mean``, ...).

    >>> metric_prefix("accuracy"), metric_prefix("mse"), metric_prefix("pkg.m:f1")
    ('acc', 'mse', 'f1')
    """
    key = metric_key(metric)
    return "acc" if key == "accuracy" else key


def consensus_distance(x: torch.Tensor) -> float:
    """(1/N) sum_i ||x_i - x_bar||^2 over the rows of ``x`` [N, P], computed in float64."""
    x64 = x.detach().to(torch.float64)
    return float((x64 - x64.mean(dim=0)).pow(2).sum(dim=1).mean())


def fitted_contraction(
    distances: Sequence[float | None], *, high: float = 1e-3, low: float = 1e-9
) -> float | None:
    """Per-round factor by which ``distances`` (one per round, from round 0) shrink.

    A least-squares fit of log distance against round, over the rounds where the distance lies
    between ``low`` and ``high`` times its start: past the transient of the slower modes, before
    float64 round-off. Pure averaging predicts (1 - rho)^2. None with fewer than 3 such rounds.

    >>> round(fitted_contraction([0.5**t for t in range(80)]), 12)
    0.5
    >>> fitted_contraction([1.0, 0.5]) is None
    True
    """
    start = distances[0]
    if start is None or not start > 0:
        return None
    window = [
        (t, d)
        for t, d in enumerate(distances)
        if d is not None and low * start <= d <= high * start
    ]
    if len(window) < 3:
        return None
    rounds, values = zip(*window, strict=True)
    slope = np.polyfit(rounds, np.log(values), 1)[0]
    return math.exp(float(slope))


def finite(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is finite, by a sum (a single pass, no mask): any NaN or
    infinity makes a sum non-finite, so a finite sum in ``x``'s own dtype settles it at once
    (one read, no copy). Only a non-finite sum is checked again: float32 or float16 entries
    cannot overflow a float64 sum; float64 entries are checked entry by entry.

    >>> finite(torch.tensor([3e38, 3e38])), finite(torch.tensor([1.0, float("nan")]))
    (True, False)
    >>> finite(torch.tensor([float("inf"), -float("inf")]))
    False
    """
    if math.isfinite(float(x.sum())):
        return True
    if x.dtype == torch.float64:
        return bool(torch.isfinite(x).all())
    return math.isfinite(float(x.sum(dtype=torch.float64)))


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: missing or non-finite numbers become null.

    >>> finite_or_none(float("nan")) is None, finite_or_none(0.5)
    (True, 0.5)
    """
    return None if value is None or not math.isfinite(value) else value


@dataclass(frozen=True, kw_only=True)
class SwarmRoundStats:
    """What the simulator yields after a round, over the whole simulated swarm (a daemon's own
    round is ``peer.runtime.RoundStats``); accuracy fields are None when not evaluated."""

    round: int
    """Rounds completed (1 after the first round)."""
    evaluated: bool
    acc_mean: float | None = None
    """The metric (test accuracy unless configured otherwise) of the live peers' own models:
    mean, min and max. In rounds.jsonl these keys take the metric's prefix
    (:func:`metric_prefix`: ``mse_mean`` for mse)."""
    acc_min: float | None = None
    acc_max: float | None = None
    acc_avg_model: float | None = None
    """The metric of the average of all peers' models."""
    acc_honest_mean: float | None = None
    """Mean and min (max when lower is better) of the metric over the live honest peers' own
    models: what a defence protects. None when no peer is Byzantine."""
    acc_honest_worst: float | None = None
    test_loss: float | None = None
    """Mean test loss of the live peers' models."""
    train_loss: float | None = None
    """Mean training loss of this round's local steps (live peers that trained)."""
    consensus_distance: float | None
    """(1/N) sum_i ||x_i - x_bar||^2 on evaluated rounds (every round for consensus)."""
    bytes_sent: int
    """Cumulative bytes published (one publish per live peer per round), exact encoded sizes."""
    bytes_delivered: int
    """Cumulative bytes received, summed over deliveries (a publish reaches each neighbour)."""
    alive: int
    stale_pairs: int
    """(sender, receiver) CHOCO copies out of sync, waiting for a keyframe."""
    wall_s: float
    diverged: bool = False
    """Some parameter is no longer finite after this round (the run stops here)."""

    def to_json(self, *, prefix: str = "acc") -> dict[str, float | int | None]:
        """One line of rounds.jsonl: NaN becomes null; ``evaluated`` is implied by presence and
        ``diverged`` is in summary.json; the metric's keys carry ``prefix`` (see
        :func:`metric_prefix`: ``mse_mean`` for mse)."""
        data = asdict(self)
        data.pop("evaluated")
        data.pop("diverged")
        return {
            (prefix + k.removeprefix("acc") if k.startswith("acc_") else k): (
                finite_or_none(v) if isinstance(v, float) else v
            )
            for k, v in data.items()
        }
