"""Synthetic data drawn a block of peers at a time is the data one draw for all of them gives."""

from __future__ import annotations

import pytest
import torch

import peer.tasks.synthetic as synthetic
from peer.tasks.dataset import Dataset


def _all_at_once(peers: synthetic._Peers, count: int, g: torch.Generator, classes: int) -> Dataset:
    """The draw before blocks: every peer's noise in one call, [N * count, D] of float64."""
    n, dim = peers.v.shape
    noise = torch.randn(n * count, dim, generator=g, dtype=torch.float64)
    x = noise.view(n, count, dim).mul_(peers.std).add_(peers.v.unsqueeze(1))
    logits = torch.baddbmm(peers.b.unsqueeze(1), x, peers.w.transpose(1, 2))
    return Dataset(x.view(n * count, dim).to(torch.float32), logits.argmax(2).view(-1), classes)


@pytest.mark.parametrize(
    ("peers", "count", "dim"), [(37, 5, 7), (40, 100, 60), (9, 1, 3), (17, 1, 3), (33, 1, 1)]
)
@pytest.mark.parametrize("block_floats", [1, 100, 1 << 22])
def test_blocks_draw_the_same_samples_and_leave_the_generator_alike(
    peers: int, count: int, dim: int, block_floats: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of one peer's worth (rounded up to whole draws of 16), of a few peers, or all of
    them, with sample sizes that are and are not multiples of 16, and tails of fewer than 16
    numbers (17 peers of 3): the same inputs bit for bit, the same labels, and the generator
    where one draw leaves it (the test set comes next)."""
    monkeypatch.setattr(synthetic, "_BLOCK_FLOATS", block_floats)
    params = synthetic._draw_peers(1.0, 1.0, peers, dim, 4, torch.Generator().manual_seed(3))
    g_blocks, g_once = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    got = synthetic._sample_each(params, count, g_blocks, 4)
    expected = _all_at_once(params, count, g_once, 4)
    assert torch.equal(got.x.view(torch.int32), expected.x.view(torch.int32))
    assert torch.equal(got.y, expected.y)
    assert torch.equal(torch.rand(4, generator=g_blocks), torch.rand(4, generator=g_once))
