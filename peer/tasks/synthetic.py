"""FedProx Synthetic(alpha, beta): per-peer logistic-regression data (Li et al., MLSys 2020).

Following the authors' generator (``generate_synthetic.py``; normal widths are standard
deviations, as there): peer k draws u_k ~ N(0, alpha) and B_k ~ N(0, beta); its labelling model
is W_k ~ N(u_k, 1) [C, D] and b_k ~ N(u_k, 1) [C]; its inputs are x ~ N(v_k, Sigma) with
v_k ~ N(B_k, 1) [D] and Sigma diagonal with Sigma_jj = j^-1.2; labels are y = argmax(W_k x + b_k).
alpha controls how much the peers' models differ, beta how much their inputs do. Unlike the
original (log-normal sizes), every peer gets ``samples_per_peer`` samples. The held-out test set
draws each sample from a uniformly chosen peer's distribution, so it covers the union of peers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from peer.tasks.dataset import Dataset, PeerData
from protocol.errors import ConfigError

__all__ = ["synthetic_fedprox", "synthetic_peer_data"]


@dataclass(frozen=True)
class _Peers:
    w: torch.Tensor  # [N, C, D]
    b: torch.Tensor  # [N, C]
    v: torch.Tensor  # [N, D]
    std: torch.Tensor  # [D]


def _draw_peers(
    alpha: float, beta: float, n: int, dim: int, classes: int, g: torch.Generator
) -> _Peers:
    f64 = torch.float64
    u = torch.randn(n, generator=g, dtype=f64) * alpha
    big_b = torch.randn(n, generator=g, dtype=f64) * beta
    v = big_b[:, None] + torch.randn(n, dim, generator=g, dtype=f64)
    w = u[:, None, None] + torch.randn(n, classes, dim, generator=g, dtype=f64)
    b = u[:, None] + torch.randn(n, classes, generator=g, dtype=f64)
    std = torch.arange(1, dim + 1, dtype=f64) ** -0.6  # variance j^-1.2
    return _Peers(w, b, v, std)


def _sample(peers: _Peers, owner: torch.Tensor, g: torch.Generator, classes: int) -> Dataset:
    """One sample per entry of ``owner`` (peer indices), from that peer's distribution."""
    dim = peers.v.shape[1]
    noise = torch.randn(owner.numel(), dim, generator=g, dtype=torch.float64)
    x = peers.v[owner] + noise * peers.std
    logits = torch.bmm(peers.w[owner], x.unsqueeze(2)).squeeze(2) + peers.b[owner]
    return Dataset(x.to(torch.float32), logits.argmax(1), classes)


_BLOCK_FLOATS = 1 << 22
"""Float64 inputs drawn at a time (32 MiB) by :func:`_sample_each`: the draw's working memory
stays this size however many peers there are, instead of twice the data set's float32 size."""


def _blocks(n: int, per_peer: int, budget: int | None = None) -> list[tuple[int, int]]:
    """Peer ranges [lo, hi) to draw ``per_peer`` numbers each for, about ``budget`` numbers a
    block (default :data:`_BLOCK_FLOATS`). Every block but the last draws a multiple of 16
    numbers; the last draws 16 or more unless it is the only one (one call redraws its last 16
    numbers when its count is not a multiple of 16, reaching back into the block before if that
    one were shorter).

    >>> _blocks(10, 8, budget=16)
    [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    >>> _blocks(40, 3, budget=48)  # 16 peers of 3 numbers a block; the last 8 draw 24
    [(0, 16), (16, 32), (32, 40)]
    >>> _blocks(33, 1, budget=16)  # the last peer alone would draw 1: it joins the block before
    [(0, 16), (16, 33)]
    """
    budget = _BLOCK_FLOATS if budget is None else budget
    align = 16 // math.gcd(per_peer, 16)  # peers per block: a multiple of this
    block = max(align, budget // per_peer // align * align)
    bounds = [*range(0, n, block), n]
    if len(bounds) > 2 and (n - bounds[-2]) * per_peer < 16:
        del bounds[-2]  # a short tail joins the block before
    return list(itertools.pairwise(bounds))


def _sample_each(peers: _Peers, count: int, g: torch.Generator, classes: int) -> Dataset:
    """``count`` samples of every peer in turn: :func:`_sample` of owners 0,..,0, 1,.. (the same
    draws and inputs), without gathering a [C, D] model per sample (4.8 GB for 10,000 peers).

    Drawn a block of peers at a time into the float32 result. ``torch.randn`` turns uniforms
    into normals 16 at a time, so blocks of a multiple of 16 numbers draw exactly what one call
    for all of them would (a test compares the two)."""
    n, dim = peers.v.shape
    x = torch.empty(n * count, dim, dtype=torch.float32)
    y = torch.empty(n * count, dtype=torch.int64)
    for lo, hi in _blocks(n, count * dim):
        noise = torch.randn((hi - lo) * count, dim, generator=g, dtype=torch.float64)
        inputs = noise.view(hi - lo, count, dim).mul_(peers.std).add_(peers.v[lo:hi].unsqueeze(1))
        logits = torch.baddbmm(peers.b[lo:hi].unsqueeze(1), inputs, peers.w[lo:hi].transpose(1, 2))
        x[lo * count : hi * count] = inputs.view(-1, dim)
        y[lo * count : hi * count] = logits.argmax(2).view(-1)
    return Dataset(x, y, classes)


def _check(alpha: float, beta: float, sizes: dict[str, int]) -> None:
    if alpha < 0 or beta < 0:
        raise ConfigError(f"synthetic alpha and beta must be >= 0, got {alpha}, {beta}")
    for name, value in sizes.items():
        low = 2 if name == "classes" else 1
        if value < low:
            raise ConfigError(f"synthetic {name} must be >= {low}, got {value}")


def synthetic_peer_data(
    alpha: float,
    beta: float,
    peers: int,
    *,
    samples_per_peer: int,
    dim: int = 60,
    classes: int = 10,
    test_samples: int = 2000,
    seed: int,
) -> tuple[PeerData, Dataset]:
    """Like :func:`synthetic_fedprox`, with the training sets already concatenated (no copy)."""
    _check(
        alpha,
        beta,
        {
            "peers": peers,
            "samples_per_peer": samples_per_peer,
            "dim": dim,
            "classes": classes,
            "test_samples": test_samples,
        },
    )
    g = torch.Generator().manual_seed(seed)
    params = _draw_peers(alpha, beta, peers, dim, classes, g)
    pooled = _sample_each(params, samples_per_peer, g, classes)
    offsets = torch.arange(peers + 1, dtype=torch.int64) * samples_per_peer
    test = _sample(params, torch.randint(peers, (test_samples,), generator=g), g, classes)
    return PeerData(pooled.x, pooled.y, offsets, classes), test


def synthetic_fedprox(
    alpha: float,
    beta: float,
    peers: int,
    *,
    samples_per_peer: int,
    dim: int = 60,
    classes: int = 10,
    test_samples: int = 2000,
    seed: int,
) -> tuple[list[Dataset], Dataset]:
    """Per-peer training sets and one held-out test set of Synthetic(alpha, beta).

    >>> train, test = synthetic_fedprox(1.0, 1.0, 3, samples_per_peer=5, test_samples=7, seed=0)
    >>> [tuple(d.x.shape) for d in train], tuple(test.x.shape), test.num_classes
    ([(5, 60), (5, 60), (5, 60)], (7, 60), 10)
    """
    data, test = synthetic_peer_data(
        alpha,
        beta,
        peers,
        samples_per_peer=samples_per_peer,
        dim=dim,
        classes=classes,
        test_samples=test_samples,
        seed=seed,
    )
    return [data.shard(i) for i in range(peers)], test
