"""Pure gossip averaging against closed-form spectral theory (float64 consensus task)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sim.config import SimConfig
from sim.metrics import fitted_contraction
from sim.report import run_and_report
from tests.sim.conftest import run
from topology.mixing import mixing_matrix
from topology.named import build_graph


def _second_modulus(topology: str, n: int) -> float:
    """max(|lambda_2|, |lambda_N|) of the Metropolis matrix, by a dense eigensolver."""
    w = mixing_matrix(build_graph(topology, n, seed=0))
    moduli = np.sort(np.abs(np.linalg.eigvalsh(w)))
    return float(moduli[-2])


@pytest.mark.parametrize(
    ("topology", "n", "one_minus_rho", "rounds"),
    [
        ("ring", 16, 1 - (2 / 3) * (1 - math.cos(2 * math.pi / 16)), 260),
        ("torus", 16, 1 - 0.4, 40),
        ("random_regular:d=4", 64, None, 120),
    ],
)
def test_contraction_matches_spectral_gap(
    topology: str, n: int, one_minus_rho: float | None, rounds: int
) -> None:
    if one_minus_rho is None:
        one_minus_rho = _second_modulus(topology, n)
    else:  # the closed form and the eigensolver must agree, or the test is wrong
        assert _second_modulus(topology, n) == pytest.approx(one_minus_rho, rel=1e-9)
    config = SimConfig(task="consensus", topology=topology, peers=n, rounds=rounds, dim=64)
    stats, x0, _ = run(config)
    assert x0.dtype == torch.float64
    distances = [s.consensus_distance or 0.0 for s in stats]
    fitted = fitted_contraction(distances)
    assert fitted is not None, "too few rounds in the fitting window"
    assert fitted == pytest.approx(one_minus_rho**2, rel=0.05)


def test_one_peer_exponential_reaches_exact_average_in_log2_n_rounds() -> None:
    config = SimConfig(task="consensus", topology="one_peer_exponential", peers=16, rounds=4)
    _, x0, x = run(config)
    average = x0.mean(dim=0)
    scale = float((x0 - average).abs().max())
    assert float((x - average).abs().max()) <= 1e-10 * scale


def test_one_peer_exponential_is_not_exact_after_three_rounds() -> None:
    config = SimConfig(task="consensus", topology="one_peer_exponential", peers=16, rounds=3)
    _, _, x = run(config)
    assert float((x - x.mean(dim=0)).abs().max()) > 1e-3


def test_summary_reports_measured_and_predicted_contraction() -> None:
    config = SimConfig(task="consensus", topology="ring", peers=16, rounds=260, dim=16)
    contraction = run_and_report(config).summary["contraction"]
    assert isinstance(contraction, dict)
    predicted = (1 - (2 / 3) * (1 - math.cos(2 * math.pi / 16))) ** 2
    assert contraction["predicted"] == pytest.approx(predicted, rel=1e-9)
    assert contraction["measured"] == pytest.approx(predicted, rel=0.01)
