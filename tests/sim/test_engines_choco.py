"""The batched publish step: the raw codec's allocation-free paths (the CPU's fused kernel, the
torch passes of other devices) give next_public_copy's bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protocol.choco import next_public_copy
from protocol.codecs import codec_from_spec
from protocol.seeds import sender_seeds
from protocol.spec import parse_spec
from sim import kernels
from sim.engines.choco import publish_batch
from sim.plan import FrameSeeds, RoundPlan


def _plan(n: int) -> RoundPlan:
    one = np.ones(n, dtype=bool)
    seqs = np.full(n, 3, dtype=np.int64)
    return RoundPlan(
        round=3,
        src=np.zeros(0, dtype=np.int64),
        dst=np.zeros(0, dtype=np.int64),
        weight=np.zeros(0),
        alive=one,
        steps=np.ones(n, dtype=np.int64),
        keyframe=~one,
        seqs=seqs,
        seeds=FrameSeeds(sender_seeds(0, n), seqs),
        delivered=np.zeros(0, dtype=bool),
        mix=np.zeros(0, dtype=bool),
        byzantine=~one,
    )


@pytest.mark.parametrize("fused", [True, False], ids=["kernel", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("codec", ["raw", "int8:block=16", "randk:fraction=0.2"])
def test_publish_with_scratch_equals_next_public_copy(
    codec: str, dtype: torch.dtype, fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fused:
        monkeypatch.setattr(kernels, "usable", lambda *tensors: False)
    n, p = 5, 40
    g = torch.Generator().manual_seed(1)
    # copies far from the models: x_hat + (x - x_hat) is not x, so the sum must be computed
    x = torch.randn(n, p, generator=g, dtype=dtype)
    x_hat = torch.randn(n, p, generator=g, dtype=dtype) * 1e8
    x[:, :3], x_hat[:, :3] = torch.tensor([0.0, -0.0, -0.0]), torch.tensor([-0.0, 0.0, -0.0])
    plan, spec = _plan(n), codec_from_spec(parse_spec(codec))
    expected = next_public_copy(x, x_hat, spec, seed=list(plan.seeds))
    got = x_hat.clone()
    publish_batch(got, x, plan, spec, scratch=lambda: torch.empty_like(x))
    assert torch.equal(got.view(torch.uint8), expected.view(torch.uint8))  # zero signs too
    assert not torch.equal(expected, x)
