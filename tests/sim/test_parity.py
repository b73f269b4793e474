"""The vector engine ends at the loop engine's parameters bit for bit after 20 rounds.

Both mix through protocol.mixing's fixed arithmetic (the vector engine slot by slot, in the
loop engine's order), so there is no tolerance. Both run single-threaded here
(tests/sim/conftest.py): with two threads, BLAS may split a batched training product
differently from a single peer's, and quantising codecs (sign, int8, fp16) amplify such
last-bit differences whenever a value sits on a rounding boundary.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sim.config import SimConfig, failures_from_mapping
from tests.sim.conftest import run

TASKS = {
    "consensus": SimConfig(task="consensus", topology="ring", peers=8, dim=40),
    "synthetic": SimConfig(task="synthetic", topology="random_regular:d=3", peers=8, lr=0.1),
    "fmnist": SimConfig(
        task="fmnist",
        model="mlp:hidden=16",
        topology="ring",
        peers=4,
        batch_size=8,
        partition="dirichlet:alpha=0.5",
    ),
}
CODECS = ["raw", "fp16", "int8:block=16", "sign", "topk:fraction=0.1", "randk:fraction=0.2"]
FAILURES: dict[str, dict[str, object]] = {
    "none": {},
    "drop": {"drop": 0.3},
    "crash": {"crash": "1@3-12,2@5"},
    "churn": {"churn": "up=5,down=3"},
    "partition": {"partition_window": "4-14"},
    "stragglers": {"stragglers": "0.5:steps=1"},
    "byzantine": {"byzantine": "0.25:attack=noise,scale=0.5"},
    "availability": {"availability": "0.5:period=6,window=2"},
}


def _config(task: str, codec: str, failure: str) -> SimConfig:
    return dataclasses.replace(
        TASKS[task],
        codec=codec,
        rounds=20,
        local_steps=2,
        keyframe_interval=4,
        eval_every=20,
        failures=failures_from_mapping(FAILURES[failure]),
    )


def _relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


# Every task x codec x failure model; fmnist (slower to load) is marked slow.
CASES = [
    (t, c, f) if t != "fmnist" else pytest.param(t, c, f, marks=pytest.mark.slow)
    for t in TASKS
    for c in CODECS
    for f in FAILURES
]


@pytest.mark.parametrize(("task", "codec", "failure"), CASES)
def test_vector_matches_loop(task: str, codec: str, failure: str) -> None:
    config = _config(task, codec, failure)
    _, x0, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop"))
    assert torch.isfinite(vector).all()
    assert _relative_gap(vector, x0) > 1e-3, "nothing happened: the test would prove nothing"
    gap = float((vector - loop).abs().max())
    assert gap == 0.0, f"the engines differ by up to {gap:.3e}"
    assert torch.equal(vector, loop)


def test_parity_check_can_fail() -> None:
    config = _config("synthetic", "sign", "drop")
    _, _, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop", failures=failures_from_mapping({})))
    assert _relative_gap(vector, loop) > 1e-3
