"""The flat optimizers follow torch.optim step for step, in one row and in batches of rows."""

from __future__ import annotations

import pytest
import torch

from peer.tasks.optim import optimizer_from_spec
from protocol.errors import ConfigError

CASES = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd:momentum=0.9", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (
        "sgd:momentum=0.5,weight_decay=0.01",
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01),
    ),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.1)),
    ("adam:weight_decay=0.1", lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1)),
    (
        "adam:beta1=0.8,beta2=0.99,eps=1e-6",
        lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.99), eps=1e-6),
    ),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=0.1)),
]


def _grads(steps: int, rows: int, size: int) -> torch.Tensor:
    return torch.randn(steps, rows, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("spec", "reference"), CASES, ids=[c[0] for c in CASES])
def test_matches_torch_optim(spec: str, reference: object) -> None:
    opt = optimizer_from_spec(spec, lr=0.1)
    grads = _grads(6, 3, 5)
    start = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    batch = start.clone()
    state = opt.init_state(batch)
    for g in grads:
        opt.step(batch, g, state)
    for row in range(3):
        p = torch.nn.Parameter(start[row].clone())
        ref = reference([p])  # type: ignore[operator]
        one = start[row].clone()
        one_state = opt.init_state(one)
        for g in grads:
            p.grad = g[row].clone()
            ref.step()
            opt.step(one, g[row], one_state)
        torch.testing.assert_close(one, p.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(batch[row], one, rtol=0, atol=0)


def test_inactive_rows_and_masked_entries_do_not_change() -> None:
    opt = optimizer_from_spec("adamw:weight_decay=0.1", lr=0.1)
    params = torch.ones(2, 4)
    state = opt.init_state(params)
    mask = torch.tensor([True, True, False, True])
    opt.step(params, torch.ones(2, 4), state, active=torch.tensor([1.0, 0.0]), mask=mask)
    assert params[1].tolist() == [1.0] * 4
    assert state["step"].tolist() == [1.0, 0.0]
    assert bool((state["exp_avg"][1] == 0).all())
    assert params[0, 2] == 1.0
    assert bool((params[0, [0, 1, 3]] < 1).all())


@pytest.mark.parametrize(
    "spec", ["rmsprop", "sgd:nesterov=true", "adam:beta1=1.5", "sgd:momentum=x"]
)
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"rmsprop|nesterov|beta1|momentum"):
        optimizer_from_spec(spec, lr=0.1)
