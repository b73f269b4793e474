"""Training batches gathered from uint8 pixels are the very floats the loader made."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from peer.tasks.dataset import PeerData
from peer.tasks.idx_io import standardise_
from peer.tasks.learner import _gather
from sim.config import SimConfig
from sim.tasks import load_task


def test_gathered_pixels_equal_the_standardised_floats_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (500, 30), generator=g, dtype=torch.uint8)
    stats = (0.2860402, 0.3530242)
    x = standardise_(pixels.to(torch.float32), stats)
    y = torch.zeros(500, dtype=torch.int64)
    with_pixels = PeerData(x, y, torch.tensor([0, 200, 500]), 10, pixels=(pixels, stats))
    floats = dataclasses.replace(with_pixels, pixels=None)
    for rows in (torch.randint(0, 500, (n,), generator=g) for n in (64, 7, 300)):
        got = _gather(with_pixels, rows).clone()
        assert torch.equal(got.view(torch.int32), x[rows].view(torch.int32))
        assert torch.equal(_gather(floats, rows), x[rows])


def test_pixels_must_match_the_samples() -> None:
    x, y = torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="pixels must be uint8"):
        PeerData(x, y, torch.tensor([0, 3]), 2, pixels=(torch.zeros(3, 2), (0.0, 1.0)))


@pytest.mark.slow
def test_fashion_mnist_batches_from_pixels_equal_the_loaded_floats() -> None:
    """Every training row of the real data set, through the simulator's task."""
    task = load_task(SimConfig(task="fmnist", peers=10, partition="dirichlet:alpha=0.1"))
    assert task.trainer is not None
    data = task.trainer.data
    assert data.pixels is not None
    for lo in range(0, len(data.x), 4096):
        rows = torch.arange(lo, min(len(data.x), lo + 4096))
        got = _gather(data, rows)
        assert torch.equal(got.view(torch.int32), data.x[rows].view(torch.int32))
