"""The aggregation rules: mean is neighbour_sum's bits, each rule's batch equals its rows, and
the robust rules bound what an outlier can do."""

from __future__ import annotations

import pytest
import torch

from protocol.aggregation import MEAN, aggregate, clip_radius, clipped
from protocol.aggregator_names import check_aggregator_spec
from protocol.errors import ConfigError
from protocol.mixing import choco_update, mix_weights, neighbour_sum
from protocol.spec import parse_spec

RULES = ["mean", "clip", "clip:b=2", "clip:tau=0.5", "trimmed_mean:b=1", "median"]


def _inputs(n: int, k: int, p: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x_hat = torch.randn(n, p, generator=gen)
    copies = x_hat.unsqueeze(1) + torch.randn(n, k, p, generator=gen)
    weights = mix_weights(torch.rand(n, k, generator=gen, dtype=torch.float64) / k, torch.float32)
    return x_hat, weights, copies


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("k", [1, 2, 5])
def test_a_batch_gives_each_row_the_bits_it_gets_alone(rule: str, k: int) -> None:
    x_hat, weights, copies = _inputs(6, k, 300)
    spec = check_aggregator_spec(rule)
    mixed, total = aggregate(spec, x_hat, weights, copies)
    assert mixed.dtype == total.dtype == torch.float64
    assert mixed.shape == x_hat.shape
    assert total.shape == (6,)
    for i in range(6):
        row_mixed, row_total = aggregate(spec, x_hat[i], weights[i], copies[i])
        assert torch.equal(row_mixed, mixed[i]), f"{rule}: row {i} differs"
        assert torch.equal(row_total, total[i])


def test_mean_is_neighbour_sum_bit_for_bit() -> None:
    x_hat, weights, copies = _inputs(4, 3, 50)
    expected = neighbour_sum(weights, copies)
    got = aggregate(parse_spec("mean"), x_hat, weights, copies)
    assert torch.equal(got[0], expected[0])
    assert torch.equal(got[1], expected[1])


def test_clip_with_a_radius_nothing_reaches_is_the_weighted_mean() -> None:
    x_hat, weights, copies = _inputs(3, 4, 20)
    mean = choco_update(x_hat, x_hat, *neighbour_sum(weights, copies), gamma=1.0)
    clip = choco_update(
        x_hat, x_hat, *aggregate(parse_spec("clip:tau=1e9"), x_hat, weights, copies), gamma=1.0
    )
    torch.testing.assert_close(clip, mean, rtol=0, atol=1e-6)


def test_clip_bounds_each_neighbours_pull_by_its_weight_times_tau() -> None:
    x_hat = torch.zeros(3)
    copies = torch.tensor([[0.1, 0.0, 0.0], [1e6, -1e6, 1e6]])
    weights = torch.tensor([0.25, 0.25], dtype=torch.float64)
    out = clipped(x_hat, weights, copies, tau=0.2, fade=False)
    assert float(out.norm()) <= 0.25 * 0.1 + 0.25 * 0.2 + 1e-12
    torch.testing.assert_close(
        out[0], torch.tensor(0.025 + 0.25 * 0.2 / 3**0.5, dtype=torch.float64)
    )


def test_the_adaptive_radius_clips_the_b_farthest_neighbours() -> None:
    assert clip_radius(torch.tensor([1.0, 5.0, 3.0, 2.0]), b=1).item() == 3.0
    assert clip_radius(torch.tensor([1.0, 5.0, 3.0, 2.0]), b=2).item() == 2.0
    assert clip_radius(torch.tensor([4.0]), b=1).item() == 4.0  # one neighbour: its own distance
    x_hat = torch.zeros(1)
    copies = torch.tensor([[1.0], [2.0], [-100.0]])
    weights = torch.full((3,), 0.25, dtype=torch.float64)
    out = clipped(x_hat, weights, copies, tau=None, b=1, fade=False)
    assert out.item() == pytest.approx(0.25 * (1 + 2 - 2))


def test_the_default_radius_is_the_farthest_neighbour_within_twice_the_median() -> None:
    distances = torch.tensor([[1.0, 1.5, 2.5, 90.0, 1e6], [1.0, 1.1, 1.2, 1.3, 1.4]])
    assert clip_radius(distances).tolist() == pytest.approx([2.5, 1.4])
    # an even count uses the lower median: [1, 2, 3, 100] -> median 2, radius 3
    assert clip_radius(torch.tensor([100.0, 1.0, 3.0, 2.0])).item() == 3.0


def test_attackers_in_a_minority_cannot_stretch_the_default_radius() -> None:
    gen = torch.Generator().manual_seed(3)
    for _ in range(200):
        honest = torch.rand(4, generator=gen) * 3
        attackers = torch.rand(3, generator=gen) * 1e6  # any values: 3 of 7 neighbours
        distances = torch.cat([honest, attackers])[torch.randperm(7, generator=gen)]
        assert clip_radius(distances).item() <= 2.0 * honest.max().item()


def test_without_outliers_clip_is_the_weighted_mean() -> None:
    gen = torch.Generator().manual_seed(5)
    x_hat = torch.randn(8, generator=gen)
    copies = x_hat + 0.1 * torch.randn(4, 8, generator=gen)  # similar neighbours: no outlier
    weights = torch.full((4,), 0.2, dtype=torch.float64)
    mean = choco_update(x_hat, x_hat, *aggregate(MEAN, x_hat, weights, copies), gamma=1.0)
    clip = choco_update(
        x_hat, x_hat, *aggregate(parse_spec("clip"), x_hat, weights, copies), gamma=1.0
    )
    torch.testing.assert_close(clip, mean, rtol=0, atol=1e-6)


def test_a_fading_neighbour_pulls_less_the_farther_it_is_and_never_more_than_clipping() -> None:
    x_hat, weight = torch.zeros(1), torch.ones(1).double()
    pulls = []
    for far in (2.0, 10.0, 1000.0):
        copies = torch.tensor([[far]])
        faded = clipped(x_hat, weight, copies, tau=1.0).item()
        clip = clipped(x_hat, weight, copies, tau=1.0, fade=False).item()
        assert clip == pytest.approx(1.0)  # clipping: always the full radius
        assert faded == pytest.approx(1.0 / far)  # tau^2 / d
        pulls.append(faded)
    assert pulls == sorted(pulls, reverse=True)


@pytest.mark.parametrize("rule", ["trimmed_mean:b=1", "median"])
def test_one_huge_outlier_cannot_leave_the_honest_range(rule: str) -> None:
    x_hat = torch.tensor([0.0, 1.0])
    copies = torch.tensor([[0.5, 2.0], [1.0, 1.5], [-1e6, 1e6]])
    weights = torch.full((3,), 0.25, dtype=torch.float64)
    mixed, total = aggregate(check_aggregator_spec(rule), x_hat, weights, copies)
    assert total.item() == 1.0
    assert 0.0 <= mixed[0].item() <= 1.0
    assert 1.0 <= mixed[1].item() <= 2.0


def test_trimmed_mean_keeps_one_value_when_b_is_too_large() -> None:
    x_hat = torch.tensor([1.0])
    copies = torch.tensor([[2.0], [30.0]])
    mixed, _ = aggregate(parse_spec("trimmed_mean:b=5"), x_hat, torch.ones(2).double(), copies)
    assert mixed.item() == 2.0  # three values, b capped at 1: the middle one


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="expected x_hat"):
        aggregate(parse_spec("median"), torch.zeros(3), torch.ones(2).double(), torch.zeros(2, 4))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("krum", "unknown aggregator 'krum'; expected one of mean, clip, trimmed_mean, median"),
        ("clip:tau=0", "clip: tau=0 out of range"),
        ("clip:tau=inf", "clip: tau=inf out of range"),
        ("clip:tau=x", "clip: tau='x' is not a number"),
        ("clip:tau=1,b=1", "not both"),
        ("clip:fade=2", "clip: fade=2 is not true or false"),
        ("trimmed_mean", "trimmed_mean: needs b=B"),
        ("trimmed_mean:b=1.5", "b=1.5 is not an integer"),
        ("median:b=1", "median: unknown parameter"),
        ("mean:", None),
    ],
)
def test_specs_are_validated_with_a_message_naming_the_problem(
    text: str, message: str | None
) -> None:
    if message is None:
        assert check_aggregator_spec(text).name == "mean"
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_aggregator_spec(text)
