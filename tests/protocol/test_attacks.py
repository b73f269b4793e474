"""protocol/attacks.py: each attack on small closed-form examples, and its spec checks."""

from __future__ import annotations

import math
import subprocess
import sys
from statistics import NormalDist

import pytest
import torch

from protocol.attack_names import ALIE_FALLBACK_Z, alie_z, check_attack_spec, resolve_attack
from protocol.attacks import attack_seed, flip_labels, published
from protocol.errors import ConfigError
from protocol.spec import Spec

X = torch.tensor([1.0, -2.0, 0.5])
COPIES = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]])


def _publish(spec: str, copies: torch.Tensor = COPIES, x: torch.Tensor = X) -> torch.Tensor:
    return published(check_attack_spec(spec), x, copies, seed=3, round=2, peer=1)


def test_signflip_is_minus_scale_times_the_model() -> None:
    assert torch.equal(_publish("signflip"), -X)
    assert torch.equal(_publish("signflip:scale=3"), -3 * X)


def test_noise_adds_a_seeded_normal_draw() -> None:
    draw = _publish("noise:scale=2") - X
    gen = torch.Generator().manual_seed(attack_seed(3, round=2, peer=1))
    expected = 2 * torch.randn(3, generator=gen, dtype=torch.float64).float()
    torch.testing.assert_close(draw, expected)
    assert not torch.equal(
        _publish("noise"), published(Spec("noise"), X, COPIES, seed=3, round=3, peer=1)
    )


def test_alie_is_the_mean_minus_z_sample_deviations() -> None:
    # per coordinate: means (2, 3, 2); sample std (1, sqrt(3), 1)
    expected = torch.tensor([2 - 1.5, 3 - 1.5 * math.sqrt(3), 2 - 1.5])
    torch.testing.assert_close(_publish("alie:z=1.5"), expected)
    one = COPIES[:1]
    assert torch.equal(_publish("alie:z=1.5", one), one[0]), "one copy: no spread"


def test_ipm_is_minus_eps_times_the_mean() -> None:
    torch.testing.assert_close(_publish("ipm"), torch.tensor([-0.2, -0.3, -0.2]))
    torch.testing.assert_close(_publish("ipm:eps=2"), torch.tensor([-4.0, -6.0, -4.0]))


def test_dissensus_pushes_the_first_copy_against_the_others_pull() -> None:
    # c1 = (1, 2, 3); pull = (c2 - c1) + (c3 - c1) = (3, 3, -3)
    torch.testing.assert_close(_publish("dissensus:eps=2"), torch.tensor([-5.0, -4.0, 9.0]))
    assert torch.equal(_publish("dissensus", COPIES[:1]), COPIES[0]), "alone: no pull"


def test_labelflip_publishes_the_model_and_flips_labels() -> None:
    assert torch.equal(_publish("labelflip"), X)
    assert flip_labels(torch.tensor([0, 1, 2]), 3).tolist() == [2, 1, 0]
    with pytest.raises(ConfigError, match="labelflip needs class labels"):
        flip_labels(torch.tensor([0, 1]), 1)


@pytest.mark.parametrize("attack", ["alie", "ipm", "dissensus"])
def test_attacks_on_copies_publish_the_own_model_before_any_copy(attack: str) -> None:
    assert torch.equal(_publish(attack, COPIES[:0]), X)


@pytest.mark.parametrize("attack", ["signflip", "noise", "alie", "ipm", "dissensus", "labelflip"])
def test_every_attack_keeps_the_model_dtype(attack: str) -> None:
    x64 = X.double()
    assert _publish(attack, COPIES.double(), x64).dtype == torch.float64
    assert _publish(attack).dtype == torch.float32


def test_alie_default_z_follows_the_paper_where_it_applies() -> None:
    n, f = 20, 8
    s = math.floor(n / 2 + 1) - f
    assert alie_z(n, f) == pytest.approx(NormalDist().inv_cdf((n - f - s) / (n - f)))
    assert alie_z(16, 2) == ALIE_FALLBACK_Z  # the formula gives z = 0 here
    assert alie_z(4, 0) == ALIE_FALLBACK_Z
    assert resolve_attack(Spec("alie"), peers=20, attackers=8).params["z"] == alie_z(20, 8)
    assert resolve_attack(Spec("alie", {"z": 2}), peers=20, attackers=8).params["z"] == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("krum", "unknown attack 'krum'; expected one of signflip"),
        ("ipm:z=1", "ipm: unknown parameter(s) z; accepted: eps"),
        ("labelflip:scale=2", "labelflip: unknown parameter(s) scale; accepted: none"),
        ("alie:z=x", "alie: z='x' is not a number"),
        ("alie:z=true", "alie: z=True is not a number"),
        ("dissensus:eps=-1", "dissensus: eps=-1 out of range; expected a finite number > 0"),
        ("noise:scale=inf", "noise: scale=inf out of range"),
        (":scale=1", "invalid name ''"),
    ],
)
def test_bad_attack_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_attack_spec(spec)


def test_attack_specs_are_checked_without_torch() -> None:
    code = (
        "import sys; from protocol.attack_names import check_attack_spec; "
        "check_attack_spec('alie:z=1'); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
