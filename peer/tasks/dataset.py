"""In-memory datasets: one labelled sample matrix, and all peers' shards concatenated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from protocol.errors import ConfigError

__all__ = ["Dataset", "PeerData"]


@dataclass(frozen=True)
class Dataset:
    """Samples ``x`` [M, D] (float32, or float64 for tests) with labels ``y`` [M] in [0, C).

    Data from a plug-in may have any sample shape, ``x`` [M, ...], and, for regression, float
    targets ``y`` [M, ...] with ``num_classes = 0``.

    >>> ds = Dataset(torch.zeros(3, 2), torch.tensor([0, 1, 1]), 2)
    >>> len(ds), ds.dim
    (3, 2)
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if self.x.dim() < 2 or not self.x.is_floating_point():
            raise ConfigError(f"x must be a float [M, D] tensor, got {self.x.dtype} {self.shape}")
        if self.regression:
            if self.y.shape[:1] != self.x.shape[:1] or self.num_classes != 0:
                raise ConfigError(
                    f"float targets y must have {self.x.shape[0]} rows and num_classes 0, got "
                    f"{tuple(self.y.shape)} and {self.num_classes}"
                )
            return
        if self.y.shape != (self.x.shape[0],) or self.y.dtype != torch.int64:
            raise ConfigError(
                f"y must be int64 of shape [{self.x.shape[0]}], got {self.y.dtype} "
                f"{tuple(self.y.shape)}"
            )
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {self.num_classes}")

    @property
    def regression(self) -> bool:
        """Float targets rather than class labels."""
        return self.y.is_floating_point()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape)

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def sample_numel(self) -> int:
        """Floats per input sample."""
        return int(self.x[0].numel()) if len(self) else int(self.x.shape[1])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, indices: torch.Tensor) -> Dataset:
        """The samples at ``indices`` (a copy), same number of classes."""
        return Dataset(self.x[indices], self.y[indices], self.num_classes)


@dataclass(frozen=True)
class PeerData:
    """Every peer's training samples, concatenated: peer ``i`` owns rows
    ``offsets[i]:offsets[i + 1]`` of ``x`` and ``y``, so a batch gather is ``x[offsets[i] + idx]``.

    >>> pd = PeerData.from_shards([Dataset(torch.ones(2, 1), torch.tensor([0, 1]), 2),
    ...                            Dataset(torch.zeros(1, 1), torch.tensor([1]), 2)])
    >>> pd.sizes.tolist(), pd.offsets.tolist(), pd.num_peers
    ([2, 1], [0, 2, 3], 2)
    """

    x: torch.Tensor
    y: torch.Tensor
    offsets: torch.Tensor
    num_classes: int
    pixels: tuple[torch.Tensor, tuple[float, float]] | None = None
    """Optionally ``x`` as the uint8 pixels [M, D] it was standardised from, with the (mean,
    std) it was standardised with (:func:`peer.tasks.idx_io.standardise_`): a training batch is
    then gathered in a quarter of the bytes and standardised again, to the very same floats."""

    def __post_init__(self) -> None:
        Dataset(self.x, self.y, self.num_classes)  # same checks on x and y
        if self.pixels is not None and (
            self.pixels[0].dtype != torch.uint8 or self.pixels[0].shape != self.x.shape
        ):
            raise ConfigError(
                f"pixels must be uint8 of x's shape {tuple(self.x.shape)}, got "
                f"{self.pixels[0].dtype} {tuple(self.pixels[0].shape)}"
            )
        off = self.offsets
        if off.dim() != 1 or off.dtype != torch.int64 or off.numel() < 2:
            raise ConfigError(f"offsets must be int64 [N + 1] with N >= 1, got {tuple(off.shape)}")
        if int(off[0]) != 0 or int(off[-1]) != self.x.shape[0]:
            raise ConfigError(
                f"offsets must run from 0 to {self.x.shape[0]}, got {int(off[0])}..{int(off[-1])}"
            )
        if bool((off[1:] <= off[:-1]).any()):
            raise ConfigError("every peer needs at least one sample; offsets must increase")

    @classmethod
    def from_shards(cls, shards: Sequence[Dataset]) -> PeerData:
        """Concatenate per-peer datasets (same dimension and classes) in peer order."""
        if not shards:
            raise ConfigError("need at least one shard")
        sizes = torch.tensor([len(s) for s in shards], dtype=torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
        x = torch.cat([s.x for s in shards])
        y = torch.cat([s.y for s in shards])
        return cls(x, y, offsets, shards[0].num_classes)

    @classmethod
    def from_partition(cls, data: Dataset, parts: Sequence[torch.Tensor]) -> PeerData:
        """Gather ``data`` into peer order: peer ``i`` gets the samples at ``parts[i]``."""
        order = torch.cat(list(parts))
        sizes = torch.tensor([p.numel() for p in parts], dtype=torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
        return cls(data.x[order], data.y[order], offsets, data.num_classes)

    def to(self, device: torch.device) -> PeerData:
        """Every tensor, pixels included, on ``device``."""
        pixels = None if self.pixels is None else (self.pixels[0].to(device), self.pixels[1])
        return replace(
            self,
            x=self.x.to(device),
            y=self.y.to(device),
            offsets=self.offsets.to(device),
            pixels=pixels,
        )

    @property
    def num_peers(self) -> int:
        return int(self.offsets.numel() - 1)

    @property
    def regression(self) -> bool:
        """Float targets rather than class labels."""
        return self.y.is_floating_point()

    @property
    def sizes(self) -> torch.Tensor:
        """Samples per peer, int64 [N]."""
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def sample_numel(self) -> int:
        """Floats per input sample."""
        return int(self.x[0].numel())

    def shard(self, peer: int) -> Dataset:
        """Peer ``peer``'s samples, as views (no copy)."""
        if not 0 <= peer < self.num_peers:
            raise ConfigError(f"peer index {peer} out of range [0, {self.num_peers})")
        lo, hi = int(self.offsets[peer]), int(self.offsets[peer + 1])
        return Dataset(self.x[lo:hi], self.y[lo:hi], self.num_classes)
