"""all_finite: the check after training and after mixing agrees with torch.isfinite."""

from __future__ import annotations

import pytest
import torch

from peer.runtime.finite import all_finite


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", [0, 500, 999])
def test_all_finite_agrees_with_torch(dtype: torch.dtype, bad: float | None, where: int) -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(where)).to(dtype)
    if bad is not None:
        x[where] = bad
    assert all_finite(x) == bool(torch.isfinite(x).all())
