"""The local Gaussian mechanism: clipping, noise statistics, seeding, batch = single."""

from __future__ import annotations

import pytest
import torch

from protocol.errors import ConfigError
from protocol.privacy import clip_update, dp_seed, gaussian_noise, privatize, privatize_rows
from protocol.privacy_params import DpParams, parse_dp


def test_clip_bounds_the_norm_and_keeps_direction() -> None:
    update = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 10
    clipped = clip_update(update, 2.5)
    assert float(torch.linalg.vector_norm(clipped)) == pytest.approx(2.5, rel=1e-12)
    cosine = torch.nn.functional.cosine_similarity(clipped, update.double(), dim=0)
    assert float(cosine) == pytest.approx(1.0, abs=1e-12)
    small = update / 1000
    assert torch.equal(clip_update(small, 2.5), small.double())


def test_noise_has_the_configured_std_and_zero_mean() -> None:
    params = DpParams(clip=0.5, sigma=3.0)
    before = torch.zeros(200_000)
    out = privatize(before, before.clone(), params, seed=dp_seed(0, round=0, peer=0))
    assert float(out.double().std()) == pytest.approx(1.5, rel=0.01)
    assert abs(float(out.double().mean())) < 0.02


def test_released_minus_noise_is_the_clipped_update() -> None:
    params = DpParams(clip=1.0, sigma=0.7)
    before, after = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    seed = dp_seed(3, round=7, peer=2)
    out = privatize(before, after, params, seed=seed)
    noise = gaussian_noise(50, params.noise_std, seed)
    assert torch.allclose(out - noise - before, clip_update(after - before, 1.0), atol=1e-12)


def test_seeds_differ_by_round_peer_and_run() -> None:
    seeds = {dp_seed(s, round=r, peer=p) for s in range(3) for r in range(20) for p in range(20)}
    assert len(seeds) == 3 * 20 * 20


def test_rows_equal_single_peer_calls() -> None:
    gen = torch.Generator().manual_seed(1)
    before, after = torch.randn(5, 300, generator=gen), torch.randn(5, 300, generator=gen)
    params = DpParams(clip=0.8, sigma=1.5)
    seeds = [dp_seed(9, round=4, peer=p) for p in range(5)]
    rows = privatize_rows(before, after, params, seeds=seeds)
    assert rows.dtype == torch.float32
    for p in range(5):
        assert torch.equal(rows[p], privatize(before[p], after[p], params, seed=seeds[p]))
    with pytest.raises(ValueError, match="4 seeds"):
        privatize_rows(before, after, params, seeds=seeds[:4])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("clip=1", "needs sigma"),
        ("clip=1,sigma=-2", "sigma = -2.0"),
        ("clip=nan,sigma=1", "clip = nan"),
        ("clip=1,sigma=1,delta=1", "delta = 1.0: expected a number in (0, 1)"),
        ("clip=1,sigma=x", "sigma='x' is not a number"),
        ("clip=1,sigma=1,eps=3", "'eps=3' is not"),
        ("clip=1,clip=2,sigma=1", "clip given twice"),
    ],
)
def test_bad_dp_text_names_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="--dp") as info:
        parse_dp(text)
    assert needle in str(info.value)


def test_params_round_trip_and_where() -> None:
    params = parse_dp("sigma=2,clip=0.1,delta=1e-6")
    assert (params.clip, params.sigma, params.delta) == (0.1, 2.0, 1e-6)
    assert parse_dp(params.describe()) == params
    with pytest.raises(ConfigError, match=r"^privacy\.clip = 0: expected"):
        DpParams(clip=0, sigma=1, where="privacy.")
