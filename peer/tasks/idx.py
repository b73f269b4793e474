"""The Fashion-MNIST and MNIST loaders, over the IDX reader of :mod:`peer.tasks.idx_io`.

Two ways to load a dataset's train and test splits:

- whole (:func:`load_raw_split`, :func:`load_fashion_mnist`): the simulator needs every peer's
  data; the uint8 files are cached per process (:func:`clear_cache` drops them) and only the
  float32 result is built on top, a block of rows at a time;
- only some rows (:class:`IdxSplit`): a daemon decodes the labels, partitions, then streams each
  image file once and keeps its own rows in uint8 (:class:`PixelRows`), converting to float32
  only the rows a batch needs. The whole training set is 188 MB in float32 and 47 MB in uint8;
  a quarter of it in uint8 is 12 MB.

Pixels are scaled to [0, 1] and standardised with the training set's mean and std, taken exactly
from a 256-bin histogram; both ways go through :func:`standardise_`, so the simulator and a
daemon see bitwise identical inputs for the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from peer.tasks.dataset import Dataset
from peer.tasks.errors import DataError, DatasetMissing
from peer.tasks.idx_io import (
    clear_cache,
    image_count,
    pixel_stats,
    read_idx,
    scan_images,
    standardise_,
)

__all__ = [
    "FASHION_MNIST_ROOT",
    "IdxSplit",
    "PixelRows",
    "RawIdx",
    "clear_cache",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "load_raw_split",
    "read_idx",
]

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
_BLOCK_ROWS = 4096
"""Rows converted to float at a time, so a gather never makes a uint8 copy of the whole set."""
_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FILES_HINT = (
    "a directory (rumor sim --data-path DIR; learning.data_path in peer.toml) holding "
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)"
)
_INSTALL_HINTS = {
    "fmnist": "install it with `apt-get install dataset-fashion-mnist` (files go to "
    f"{FASHION_MNIST_ROOT}), or point to {_FILES_HINT}",
    "mnist": f"point to {_FILES_HINT}",
}


@dataclass(frozen=True)
class RawIdx:
    """Images as uint8 [M, rows * cols] and labels as int64 [M], validated against each other."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def pixel_stats(self) -> tuple[float, float]:
        """Mean and std of the pixels scaled to [0, 1], exactly, from a 256-bin histogram."""
        return pixel_stats(torch.bincount(self.images.reshape(-1), minlength=256))

    def to_dataset(self, stats: tuple[float, float], rows: torch.Tensor | None = None) -> Dataset:
        """Float32 samples (optionally only ``rows``), standardised with ``stats``."""
        rows = torch.arange(len(self.labels)) if rows is None else rows
        x = torch.empty(rows.numel(), self.images.shape[1], dtype=torch.float32)
        for lo in range(0, rows.numel(), _BLOCK_ROWS):
            x[lo : lo + _BLOCK_ROWS] = self.images[rows[lo : lo + _BLOCK_ROWS]]
        return Dataset(standardise_(x, stats), self.labels[rows], self.num_classes)


@dataclass(frozen=True)
class PixelRows:
    """Samples kept as uint8 (a quarter of float32's memory) with the stats that standardise
    them; :meth:`subset` converts only the rows asked for, to exactly the floats
    :meth:`RawIdx.to_dataset` gives.

    >>> raw = RawIdx(torch.tensor([[0, 255], [255, 255]], dtype=torch.uint8),
    ...              torch.tensor([1, 0]), 2)
    >>> PixelRows(raw, (0.5, 0.25)).subset(torch.tensor([1, 0])).x.tolist()
    [[2.0, 2.0], [-2.0, 2.0]]
    """

    raw: RawIdx
    stats: tuple[float, float]

    def __len__(self) -> int:
        return int(self.raw.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> Dataset:
        """Float32 samples at ``indices``, standardised."""
        return self.raw.to_dataset(self.stats, indices)


def _checked_labels(
    images_path: Path, images: int, labels_path: Path, num_classes: int, *, cached: bool = True
) -> torch.Tensor:
    labels = read_idx(labels_path, ndim=1, cached=cached)
    if images != labels.shape[0]:
        raise DataError(
            f"{images_path} has {images} images but {labels_path} has {labels.shape[0]} labels"
        )
    top = int(labels.max())
    if top >= num_classes:
        raise DataError(f"{labels_path}: label {top} outside [0, {num_classes})")
    return labels.to(torch.int64)


def _load_raw_pair(images_path: Path, labels_path: Path, num_classes: int) -> RawIdx:
    images = read_idx(images_path, ndim=3)
    labels = _checked_labels(images_path, images.shape[0], labels_path, num_classes)
    return RawIdx(images.reshape(images.shape[0], -1), labels, num_classes)


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


def _split_files(root: Path, dataset: str) -> list[tuple[Path, Path]]:
    """(images, labels) for the train then the test split."""
    if dataset not in _INSTALL_HINTS:
        raise DataError(f"unknown IDX dataset {dataset!r}; expected one of {list(_INSTALL_HINTS)}")
    stems = (_STEMS["train"], _STEMS["test"])
    return [(_find(Path(root), i, dataset), _find(Path(root), lb, dataset)) for i, lb in stems]


def load_raw_split(root: Path, *, dataset: str) -> tuple[RawIdx, RawIdx]:
    """The train and test splits of ``dataset`` ("fmnist" or "mnist") under ``root``, as uint8."""
    (train_img, train_lbl), (test_img, test_lbl) = _split_files(root, dataset)
    return _load_raw_pair(train_img, train_lbl, 10), _load_raw_pair(test_img, test_lbl, 10)


@dataclass(frozen=True, kw_only=True)
class IdxSplit:
    """A dataset's train and test labels (int64), decoded and checked against the image files'
    headers; the images stay on disk until :meth:`rows` streams the ones asked for."""

    train_images: Path
    test_images: Path
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int = 10

    @classmethod
    def locate(cls, root: Path, *, dataset: str) -> IdxSplit:
        """Find ``dataset`` ("fmnist" or "mnist") under ``root`` and decode its labels."""
        (train_img, train_lbl), (test_img, test_lbl) = _split_files(root, dataset)
        labels = [
            _checked_labels(img, image_count(img), lbl, 10, cached=False)
            for img, lbl in ((train_img, train_lbl), (test_img, test_lbl))
        ]
        return cls(
            train_images=train_img,
            test_images=test_img,
            train_labels=labels[0],
            test_labels=labels[1],
        )

    def rows(self, train: torch.Tensor, test: torch.Tensor) -> tuple[PixelRows, PixelRows]:
        """The training samples at ``train`` and the test samples at ``test``, kept in uint8
        with the whole training set's stats. Each image file is streamed once; only the chosen
        rows are ever held."""
        train_images, counts = scan_images(self.train_images, train)
        stats = pixel_stats(counts)
        test_images, _ = scan_images(self.test_images, test)
        return (
            PixelRows(RawIdx(train_images, self.train_labels[train], self.num_classes), stats),
            PixelRows(RawIdx(test_images, self.test_labels[test], self.num_classes), stats),
        )


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
