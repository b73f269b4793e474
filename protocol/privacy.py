"""The local Gaussian mechanism: clip a peer's update, add noise once, then gossip as usual.

A peer that trained this round replaces its new model ``after`` by

    before + clip(after - before, C) + N(0, (sigma * C)^2 I),

where ``before`` is its model at the start of the round and ``clip(u, C) = u * min(1, C/||u||)``
(L2 norm, computed in float64). This is the "noise once, then gossip" scheme of Muffliato
(Cyffers, Even, Bellet and Massoulie, NeurIPS 2022) in its local-DP form: everything the peer
publishes afterwards (CHOCO frames, keyframes, its later models) is a function of noised models
and of what other peers published, so it costs no further privacy. ``before`` itself is such a
function (of earlier noised models and received frames), so each round is one Gaussian mechanism
on the peer's data with L2 sensitivity 2C (:mod:`protocol.privacy_accounting`).

The noise of peer ``peer`` in round ``round`` comes from :func:`dp_seed` ``(seed, round, peer)``:
the simulator's vector and loop engines and a daemon given the same seed draw the same noise
([N, P] here gives row by row exactly what [P] gives). A real peer must keep its seed secret
(``rumor peer`` draws a random one unless ``privacy.seed`` is set): whoever knows it can
subtract the noise.

>>> from protocol.privacy_params import DpParams
>>> before = torch.zeros(3)
>>> out = privatize(before, torch.tensor([3.0, 4.0, 0.0]), DpParams(clip=1, sigma=1e-9), seed=1)
>>> [round(v, 6) for v in out.tolist()]
[0.6, 0.8, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from protocol.privacy_params import DpParams

__all__ = ["clip_update", "dp_seed", "gaussian_noise", "privatize", "privatize_rows"]

_STREAM = 0x4450  # "DP": a stream of its own, apart from every other seeded draw in rumor


def dp_seed(seed: int, *, round: int, peer: int) -> int:
    """The 64-bit seed of the noise ``peer`` adds in ``round``: distinct streams for every
    (seed, round, peer), however many peers and rounds.

    >>> dp_seed(0, round=1, peer=0) != dp_seed(0, round=0, peer=1)
    True
    """
    sequence = np.random.SeedSequence([seed, _STREAM, round, peer])
    return int(sequence.generate_state(1, np.uint64)[0])


def clip_update(update: torch.Tensor, clip: float) -> torch.Tensor:
    """``update`` [P] scaled by ``min(1, clip / ||update||_2)``, in float64.

    >>> clip_update(torch.tensor([3.0, 4.0]), 1.0).tolist()
    [0.6000000000000001, 0.8]
    >>> clip_update(torch.tensor([0.5, 0.25]), 1.0).tolist()
    [0.5, 0.25]
    """
    wide = update.to(torch.float64)
    norm = float(torch.linalg.vector_norm(wide))
    if norm <= clip:
        return wide
    return wide * (clip / norm)


def gaussian_noise(numel: int, std: float, seed: int) -> torch.Tensor:
    """``numel`` independent N(0, std^2) draws [P], float64, from ``seed`` alone.

    >>> torch.equal(gaussian_noise(4, 1.0, 7), gaussian_noise(4, 1.0, 7))
    True
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(numel, generator=generator, dtype=torch.float64) * std


def privatize(
    before: torch.Tensor, after: torch.Tensor, params: DpParams, *, seed: int
) -> torch.Tensor:
    """One peer's released model [P]: ``before + clip(after - before) + noise``, with the
    noise drawn from ``seed`` (:func:`dp_seed`); computed in float64, returned in
    ``after``'s dtype."""
    update = clip_update(after.to(torch.float64) - before.to(torch.float64), params.clip)
    noise = gaussian_noise(update.numel(), params.noise_std, seed).to(update.device)
    return (before.to(torch.float64) + update + noise).to(after.dtype)


def privatize_rows(
    before: torch.Tensor, after: torch.Tensor, params: DpParams, *, seeds: Sequence[int]
) -> torch.Tensor:
    """:func:`privatize` of each row of ``before``/``after`` [N, P] with its seed: a new [N, P]
    whose row i is exactly ``privatize(before[i], after[i], params, seed=seeds[i])``.

    >>> from protocol.privacy_params import DpParams
    >>> b, a, p = torch.zeros(2, 3), torch.ones(2, 3), DpParams(clip=1, sigma=0.5)
    >>> rows = privatize_rows(b, a, p, seeds=[5, 6])
    >>> torch.equal(rows[1], privatize(b[1], a[1], p, seed=6))
    True
    """
    if len(seeds) != before.shape[0] or before.shape != after.shape:
        raise ValueError(f"{len(seeds)} seeds for {tuple(before.shape)} and {tuple(after.shape)}")
    out = torch.empty_like(after)
    for i, seed in enumerate(seeds):  # one peer at a time: the noise stream is per peer
        out[i] = privatize(before[i], after[i], params, seed=seed)
    return out
