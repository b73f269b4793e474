"""default_gamma is stable: CHOCO-GOSSIP on a ring contracts with it (batched compress)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from protocol.codecs import codec_from_spec, default_gamma

N, P = 16, 200


def ring(n: int) -> torch.Tensor:
    w = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in (i - 1, i, i + 1):
            w[i, j % n] = 1 / 3
    return w


def consensus_ratio(spec: str, gamma: float, rounds: int) -> float:
    """Consensus distance after ``rounds`` of CHOCO-GOSSIP over its initial value."""
    codec, w = codec_from_spec(spec), ring(N)
    x = torch.randn(N, P, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_hat = torch.zeros_like(x)
    start = float(((x - x.mean(0)) ** 2).sum())
    for t in range(rounds):
        x_hat += codec.compress(x - x_hat, seed=[t * N + i for i in range(N)])
        x = x + gamma * (w @ x_hat - x_hat)
    return float(((x - x.mean(0)) ** 2).sum()) / start


@pytest.mark.parametrize(
    ("spec", "bound"),
    [
        ("raw", 1e-12),
        ("fp16", 1e-5),
        ("int8", 1e-3),
        ("sign", 1e-3),
        ("topk:fraction=0.1", 1e-3),
        ("topk:fraction=0.01", 0.1),
        ("randk:fraction=0.1", 0.1),
    ],
)
def test_default_gamma_contracts(spec: str, bound: float) -> None:
    assert consensus_ratio(spec, default_gamma(spec), rounds=400) < bound


def test_top_10_percent_fails_to_contract_at_gamma_one_half() -> None:
    """The prototype's failure (it diverged), which default_gamma's margin avoids."""
    assert consensus_ratio("topk:fraction=0.1", 0.5, rounds=400) > 0.1


def test_docs_state_each_codecs_default_gamma() -> None:
    """docs/protocol.md's table of default gammas is the code's."""
    text = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    assert "| `raw`, `fp16`, `int8` | 1 (plain D-PSGD) |" in text
    assert "| `sign` | 0.5 |" in text
    assert "| `topk:fraction=F` | `0.5 * sqrt(F)`, or 1 when F = 1 |" in text
    assert "| `randk:fraction=F` | `0.5 * F`, or 1 when F = 1 |" in text
    for spec in ("raw", "fp16", "int8", "topk:fraction=1", "randk:fraction=1"):
        assert default_gamma(spec) == 1.0
    assert default_gamma("sign") == 0.5
    assert default_gamma("topk:fraction=0.04") == pytest.approx(0.5 * 0.2)
    assert default_gamma("randk:fraction=0.04") == pytest.approx(0.5 * 0.04)
