"""Split a labelled dataset among peers: ``iid``, ``dirichlet:alpha=A`` and ``shards:k=K``.

- ``iid``: a random permutation cut into nearly equal parts; every sample is used.
- ``dirichlet:alpha=A`` (label skew, Hsu et al. 2019): peer i draws a class distribution
  q_i ~ Dir(A * C * p), with p the dataset's class frequencies, and fills its share of the samples
  by sampling classes from q_i without replacement (renormalising over the classes left). For
  balanced labels that is Dir(A, ..., A): ``alpha`` is the per-class concentration, the convention
  of most federated-learning libraries (Hsu et al.'s alpha is C times ours). Small alpha puts one
  or two classes on a peer; large alpha approaches iid. Peers get equal sizes (+-1), every sample
  is used.
- ``shards:k=K`` (McMahan et al. 2017): sort by label, cut into peers * K equal shards, give each
  peer K random shards. A peer sees at most K classes (fewer when two of its shards share one);
  the last ``M mod (peers * K)`` samples of the sorted order are left out.

Every sample goes to at most one peer and no peer is empty, or ConfigError says why not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from peer.tasks.specs import check_partition_spec, positive_param
from protocol.errors import ConfigError
from protocol.spec import Spec

__all__ = ["PartitionReport", "label_entropy", "partition", "partition_report"]

_Ints = npt.NDArray[np.int64]


def _iid(labels: _Ints, peers: int, rng: np.random.Generator) -> list[_Ints]:
    return list(np.array_split(rng.permutation(labels.size), peers))


def _class_weights(
    alpha: float, prior: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    q: npt.NDArray[np.float64] = rng.dirichlet(alpha * prior.size * prior)
    if not np.isfinite(q).all() or q.sum() <= 0:  # underflow for tiny alpha: one class
        q = np.zeros_like(prior)
        q[rng.choice(prior.size, p=prior)] = 1.0
    return q


def _dirichlet(labels: _Ints, peers: int, alpha: float, rng: np.random.Generator) -> list[_Ints]:
    classes = int(labels.max()) + 1
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in range(classes)]
    avail = np.array([p.size for p in pools], dtype=np.int64)
    prior = avail / labels.size
    used = np.zeros(classes, dtype=np.int64)
    base, extra = divmod(labels.size, peers)
    parts = []
    for i in range(peers):
        need = base + (i < extra)
        q = _class_weights(alpha, prior, rng)
        got = np.zeros(classes, dtype=np.int64)
        while need > 0:  # at most C passes: each capped draw exhausts a class
            w = q * (avail > 0)
            w = w / w.sum() if w.sum() > 0 else (avail > 0) / (avail > 0).sum()
            draw = np.minimum(rng.multinomial(need, w), avail)
            got, avail, need = got + draw, avail - draw, need - int(draw.sum())
        parts.append(np.concatenate([pools[c][used[c] : used[c] + got[c]] for c in range(classes)]))
        used += got
    return parts


def _shards(labels: _Ints, peers: int, k: int, rng: np.random.Generator) -> list[_Ints]:
    count = peers * k
    if labels.size < count:
        raise ConfigError(
            f"shards:k={k} needs {count} samples for {peers} peers, got {labels.size}"
        )
    perm = rng.permutation(labels.size)
    order = perm[np.argsort(labels[perm], kind="stable")]  # by label, random within a label
    size = labels.size // count
    shards = order[: size * count].reshape(count, size)
    pick = rng.permutation(count).reshape(peers, k)
    return [shards[row].reshape(-1) for row in pick]


def partition(
    labels: torch.Tensor, peers: int, spec: str | Spec, *, seed: int
) -> list[torch.Tensor]:
    """Per-peer int64 index tensors into ``labels`` (see the module docstring for the schemes).

    >>> labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 3])
    >>> [p.numel() for p in partition(labels, 4, "iid", seed=0)]
    [3, 2, 2, 2]
    >>> parts = partition(labels, 2, "shards:k=2", seed=0)  # 4 pure shards of 2, one left out
    >>> [len(set(labels[p].tolist())) for p in parts], sum(p.numel() for p in parts)
    ([2, 2], 8)
    """
    spec = check_partition_spec(spec)
    if peers < 1:
        raise ConfigError(f"peers must be >= 1, got {peers}")
    if labels.numel() < peers:
        raise ConfigError(f"cannot give {peers} peers a sample each from {labels.numel()} samples")
    lab = labels.cpu().numpy().astype(np.int64)
    rng = np.random.default_rng(seed)
    if spec.name == "dirichlet":
        parts = _dirichlet(lab, peers, positive_param(spec, "alpha", float), rng)
    elif spec.name == "shards":
        parts = _shards(lab, peers, int(positive_param(spec, "k", int)), rng)
    else:
        parts = _iid(lab, peers, rng)
    return [torch.from_numpy(np.ascontiguousarray(p, dtype=np.int64)) for p in parts]


def label_entropy(histograms: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of each row of a label histogram [N, C].

    >>> label_entropy(torch.tensor([[5, 5], [7, 0]])).tolist()
    [1.0, 0.0]
    """
    p = histograms.to(torch.float64)
    p = p / p.sum(1, keepdim=True).clamp_min(1)
    return (p * torch.log2(p.where(p > 0, 1.0))).sum(1).neg() + 0.0  # + 0.0: no -0.0


@dataclass(frozen=True)
class PartitionReport:
    """Per-peer sizes [N] and label histograms [N, C], for summaries and reports."""

    sizes: torch.Tensor
    histograms: torch.Tensor

    def summary(self) -> dict[str, float]:
        """Size min/mean/max, classes per peer and label entropy (bits), averaged over peers."""
        sizes = self.sizes.to(torch.float64)
        return {
            "size_min": float(sizes.min()),
            "size_mean": float(sizes.mean()),
            "size_max": float(sizes.max()),
            "classes_per_peer": float((self.histograms > 0).sum(1).to(torch.float64).mean()),
            "label_entropy_bits": float(label_entropy(self.histograms).mean()),
        }


def partition_report(
    labels: torch.Tensor, parts: list[torch.Tensor], num_classes: int
) -> PartitionReport:
    """Sizes and label histograms of a partition of ``labels``."""
    hist = torch.stack([torch.bincount(labels[p], minlength=num_classes) for p in parts])
    sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
    return PartitionReport(sizes, hist)
