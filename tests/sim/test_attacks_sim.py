"""Attacks in the simulator: both engines publish the same forged frames, from what each attacker
received; labelflip peers follow the protocol on flipped labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from protocol.errors import ConfigError
from protocol.spec import Spec
from sim.config import SimConfig, failures_from_mapping
from sim.engines.base import forged_frames
from sim.plan import RoundPlan
from sim.runner import Simulation
from sim.sweep_settings import parse_failures
from tests.sim.conftest import run

ATTACKS = [
    "signflip:scale=2",
    "noise:scale=0.5",
    "alie",
    "alie:z=3",
    "ipm",
    "dissensus",
    "labelflip",
]
BASE = SimConfig(
    task="synthetic",
    topology="erdos_renyi:p=0.4",
    peers=10,
    lr=0.1,
    rounds=12,
    local_steps=2,
    keyframe_interval=4,
    eval_every=12,
)


def _byzantine(attack: str, fraction: float = 0.2) -> str:
    name, _, params = attack.partition(":")
    return f"{fraction}:attack={name}" + (f",{params}" if params else "")


@pytest.mark.parametrize("drop", [0.0, 0.3])
@pytest.mark.parametrize("rule", ["mean", "clip"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_vector_and_loop_engines_agree_bit_for_bit(attack: str, rule: str, drop: float) -> None:
    failures = failures_from_mapping({"drop": drop, "byzantine": _byzantine(attack)})
    config = dataclasses.replace(BASE, aggregator=rule, failures=failures)
    _, start, vector = run(config)
    _, _, loop = run(dataclasses.replace(config, engine="loop"))
    assert float((loop - start).abs().max()) > 1e-3, "nothing happened"
    assert torch.equal(vector, loop), f"differ by up to {float((vector - loop).abs().max()):.3e}"


def _plan(*, round: int, seqs: list[int]) -> RoundPlan:
    """Peer 0 attacks and receives from 1 and 2; peer 1 receives from 0."""
    one = np.ones(3, dtype=bool)
    return RoundPlan(
        round=round,
        src=np.array([1, 2, 0]),
        dst=np.array([0, 0, 1]),
        weight=np.full(3, 0.25),
        alive=one,
        steps=np.ones(3, dtype=np.int64),
        keyframe=~one,
        seqs=np.array(seqs),
        seeds=[0, 0, 0],
        delivered=one,
        mix=one,
        byzantine=np.array([True, False, False]),
    )


def test_an_attacker_uses_the_copies_it_received_and_its_own_model_before_any() -> None:
    x = torch.tensor([[5.0, 5.0], [1.0, 2.0], [3.0, 6.0]])
    x_hat = torch.tensor([[0.0, 0.0], [2.0, 2.0], [4.0, 8.0]])

    def frames(attack: str, plan: RoundPlan) -> torch.Tensor:
        out = forged_frames(plan, Spec(attack), seed=0, own=lambda p: x[p], copy=lambda p: x_hat[p])
        assert list(out) == [0]
        return out[0]

    later = _plan(round=3, seqs=[3, 3, 3])
    assert torch.equal(frames("ipm", later), torch.tensor([-0.3, -0.5]))  # -0.1 * (3, 5)
    # (2, 2) - 1.5 * (2, 6)
    assert torch.equal(frames("dissensus", later), torch.tensor([-1.0, -7.0]))
    assert torch.equal(frames("signflip", later), torch.tensor([-5.0, -5.0]))
    first = _plan(round=0, seqs=[0, 0, 0])
    assert torch.equal(frames("ipm", first), x[0]), "nothing received yet: its own model"


def test_labelflip_peers_mix_train_on_flipped_labels_and_count_as_attackers() -> None:
    failures = failures_from_mapping({"byzantine": "0.3:attack=labelflip"})
    clean = Simulation(BASE)
    sim = Simulation(dataclasses.replace(BASE, failures=failures))
    attackers = sim.failures.byzantine
    assert attackers.sum() == 3
    assert not sim.planner.plan(0, sim.topology.edges_at(0)).byzantine.any(), "they mix"
    assert clean.task.trainer is not None
    assert sim.task.trainer is not None
    before, after = clean.task.trainer.data, sim.task.trainer.data
    classes = before.num_classes
    offsets = before.offsets.tolist()
    for peer in range(BASE.peers):
        rows = slice(offsets[peer], offsets[peer + 1])
        expected = classes - 1 - before.y[rows] if attackers[peer] else before.y[rows]
        assert torch.equal(after.y[rows], expected), f"peer {peer}"
    final = list(sim.run())[-1]
    assert final.acc_honest_mean is not None


def test_labelflip_needs_labels() -> None:
    failures = failures_from_mapping({"byzantine": "0.3:attack=labelflip"})
    with pytest.raises(ConfigError, match="labelflip needs a task with training data"):
        Simulation(SimConfig(task="consensus", peers=8, rounds=2, failures=failures))


def test_sweep_failure_settings_carry_an_attack_and_its_parameters() -> None:
    none, alie, dissensus = parse_failures(
        "none;byzantine=0.125:attack=alie;drop=0.1+byzantine=0.25:attack=dissensus/eps=2"
    )
    assert none.byzantine is None
    assert alie.byzantine is not None
    assert alie.byzantine.attack == Spec("alie")
    assert dissensus.byzantine is not None
    assert dissensus.byzantine.attack == Spec("dissensus", {"eps": 2})
    assert dissensus.describe() == "drop=0.1,byz=0.25:dissensus:eps=2"
    with pytest.raises(ConfigError, match="ipm: unknown parameter"):
        parse_failures("byzantine=0.1:attack=ipm/z=1")
