"""IDX files (the MNIST family's format) and the Fashion-MNIST and MNIST loaders.

An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, then
one uint32 per dimension) followed by the data. Only unsigned bytes (type 0x08) occur in these
datasets. Files may be gzipped; that is detected from the content, not the name.

Decoded files are cached per process (keyed by path, size and mtime) because sweeps reload the
same data for every run; the cache holds the compact uint8 arrays, and float conversion happens
on demand. Pixels are scaled to [0, 1] and standardised with the training set's mean and std.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from peer.tasks.dataset import Dataset
from peer.tasks.errors import DataError, DatasetMissing

__all__ = [
    "FASHION_MNIST_ROOT",
    "RawIdx",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "load_raw_split",
    "read_idx",
]

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
_UBYTE = 0x08
_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FILES_HINT = (
    "a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)"
)
_INSTALL_HINTS = {
    "fmnist": "install it with `apt-get install dataset-fashion-mnist` (files go to "
    f"{FASHION_MNIST_ROOT}), or pass --data DIR with {_FILES_HINT}",
    "mnist": f"pass --data DIR with {_FILES_HINT}",
}


def _decode(path: Path, blob: bytes, ndim: int) -> torch.Tensor:
    if len(blob) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(blob)} bytes)")
    zero, dtype, got_ndim = struct.unpack(">HBB", blob[:4])
    if zero != 0 or dtype != _UBYTE:
        raise DataError(
            f"{path}: bad IDX magic 0x{blob[:4].hex()}; expected 0x0000{_UBYTE:02x}{ndim:02x}"
        )
    if got_ndim != ndim:
        raise DataError(f"{path}: IDX file has {got_ndim} dimension(s), expected {ndim}")
    dims = struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim])
    expected = 1
    for d in dims:
        expected *= d
    body = blob[4 + 4 * ndim :]
    if len(body) != expected or expected == 0:
        raise DataError(
            f"{path}: data has {len(body)} bytes, header dims {list(dims)} need {expected}"
        )
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(dims)


@functools.lru_cache(maxsize=8)
def _read_cached(path: Path, ndim: int, _size: int, _mtime_ns: int) -> torch.Tensor:
    try:
        blob = path.read_bytes()
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    return _decode(path, blob, ndim)


def read_idx(path: Path, *, ndim: int) -> torch.Tensor:
    """Decode an unsigned-byte IDX file (plain or gzipped) of ``ndim`` dimensions into uint8.

    The result is shared with the per-process cache: do not modify it in place.
    """
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise DatasetMissing(f"{path}: no such file") from exc
    return _read_cached(path.resolve(), ndim, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class RawIdx:
    """Images as uint8 [M, rows * cols] and labels as int64 [M], validated against each other."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def pixel_stats(self) -> tuple[float, float]:
        """Mean and std of the pixels scaled to [0, 1], exactly, from a 256-bin histogram."""
        counts = torch.bincount(self.images.reshape(-1), minlength=256).to(torch.float64)
        values = torch.arange(256, dtype=torch.float64) / 255.0
        mean = float((counts * values).sum() / counts.sum())
        var = float((counts * (values - mean) ** 2).sum() / counts.sum())
        return mean, var**0.5

    def to_dataset(self, stats: tuple[float, float], rows: torch.Tensor | None = None) -> Dataset:
        """Float32 samples (optionally only ``rows``), standardised with ``stats``."""
        images = self.images if rows is None else self.images[rows]
        labels = self.labels if rows is None else self.labels[rows]
        mean, std = stats
        x = images.to(torch.float32).mul_(1.0 / (255.0 * std)).sub_(mean / std)
        return Dataset(x, labels, self.num_classes)


def _load_raw_pair(images_path: Path, labels_path: Path, num_classes: int) -> RawIdx:
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images.shape[0]} images but {labels_path} has "
            f"{labels.shape[0]} labels"
        )
    top = int(labels.max())
    if top >= num_classes:
        raise DataError(f"{labels_path}: label {top} outside [0, {num_classes})")
    return RawIdx(images.reshape(images.shape[0], -1), labels.to(torch.int64), num_classes)


def load_idx_pair(
    images_path: Path,
    labels_path: Path,
    *,
    num_classes: int = 10,
    stats: tuple[float, float] | None = None,
) -> Dataset:
    """Read an images/labels IDX pair into a float32 Dataset [M, rows * cols].

    Pixels are scaled to [0, 1] then standardised with ``stats`` (mean, std), by default the
    pair's own. Raises DataError naming the file and the problem; DatasetMissing if absent.
    """
    raw = _load_raw_pair(Path(images_path), Path(labels_path), num_classes)
    return raw.to_dataset(stats if stats is not None else raw.pixel_stats())


def _find(root: Path, stem: str, dataset: str) -> Path:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    raise DatasetMissing(
        f"{dataset} data not found: no {stem}[.gz] in {root}; {_INSTALL_HINTS[dataset]}"
    )


def load_raw_split(root: Path, *, dataset: str) -> tuple[RawIdx, RawIdx]:
    """The train and test splits of ``dataset`` ("fmnist" or "mnist") under ``root``, as uint8."""
    if dataset not in _INSTALL_HINTS:
        raise DataError(f"unknown IDX dataset {dataset!r}; expected one of {list(_INSTALL_HINTS)}")
    root = Path(root)
    splits = []
    for split in ("train", "test"):
        img_stem, lbl_stem = _STEMS[split]
        images, labels = _find(root, img_stem, dataset), _find(root, lbl_stem, dataset)
        splits.append(_load_raw_pair(images, labels, 10))
    return splits[0], splits[1]


def _load_split(root: Path, dataset: str) -> tuple[Dataset, Dataset]:
    train, test = load_raw_split(root, dataset=dataset)
    stats = train.pixel_stats()
    return train.to_dataset(stats), test.to_dataset(stats)


def load_fashion_mnist(root: Path = FASHION_MNIST_ROOT) -> tuple[Dataset, Dataset]:
    """Fashion-MNIST (train 60,000, test 10,000, 784 features, 10 classes), standardised."""
    return _load_split(root, "fmnist")


def load_mnist(root: Path) -> tuple[Dataset, Dataset]:
    """MNIST from the four IDX files in ``root``, standardised like Fashion-MNIST."""
    return _load_split(root, "mnist")
