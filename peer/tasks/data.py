"""Task data in one import: datasets, IDX loaders, and the FedProx synthetic generator."""

from __future__ import annotations

from peer.tasks.dataset import Dataset, PeerData
from peer.tasks.errors import DataError, DatasetMissing
from peer.tasks.idx import (
    FASHION_MNIST_ROOT,
    IdxSplit,
    PixelRows,
    RawIdx,
    load_fashion_mnist,
    load_idx_pair,
    load_mnist,
    load_raw_split,
)
from peer.tasks.synthetic import synthetic_fedprox, synthetic_peer_data

__all__ = [
    "FASHION_MNIST_ROOT",
    "DataError",
    "Dataset",
    "DatasetMissing",
    "IdxSplit",
    "PeerData",
    "PixelRows",
    "RawIdx",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "load_raw_split",
    "synthetic_fedprox",
    "synthetic_peer_data",
]
