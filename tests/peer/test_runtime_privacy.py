"""Differential privacy on real daemons: the same released models as the simulator's engines,
epsilon in the telemetry, and a [privacy] section that names its bad keys."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
import torch

from peer.config import PeerConfig, config_from_dict
from peer.runtime.privacy import PeerPrivacy
from peer.transport import MemoryBroker
from protocol.envelope import decode_envelope
from protocol.errors import ConfigError
from protocol.privacy_accounting import epsilon
from protocol.privacy_params import DpParams
from sim.config import SimConfig
from sim.runner import Simulation
from tests.peer.runtime_helpers import LEARNING, drive, memory_peer, run_memory_swarm

ROUNDS = 4
DP = "clip=0.2,sigma=0.5,delta=1e-6"


def _simulate(dp: str | None) -> torch.Tensor:
    config = SimConfig(
        task="fmnist",
        model="mlp:hidden=16",
        topology="ring",
        peers=4,
        rounds=ROUNDS,
        partition="dirichlet:alpha=0.5",
        keyframe_interval=3,
        local_steps=2,
        batch_size=8,
        lr=0.05,
        seed=0,
        engine="loop",
        eval_every=ROUNDS,
        dp=dp,
    )
    sim = Simulation(config)
    for _ in sim.run():
        pass
    return sim.engine.params().clone()


@pytest.mark.slow
async def test_daemons_release_what_the_loop_engine_releases() -> None:
    # privacy.seed = the run seed: the daemon draws the simulator's noise (a real peer leaves
    # it unset and draws a secret one)
    privacy = {"clip": 0.2, "sigma": 0.5, "delta": 1e-6, "seed": 0}
    configs = [
        config_from_dict(
            {
                "identity": {"peer": f"p{i}", "swarm": "dp"},
                "topology": {"family": "ring", "size": 4, "node": i, "seed": 0},
                "learning": LEARNING,
                "gossip": {"rounds": ROUNDS, "keyframe_interval": 3, "round_timeout_s": 20.0},
                "privacy": privacy,
            }
        )
        for i in range(4)
    ]
    results = await run_memory_swarm(configs)
    assert all(s.received == 2 for stats, _ in results for s in stats), "a frame was missed"
    daemon = torch.stack([x for _, x in results])
    loop = _simulate(DP)
    assert not torch.equal(loop, _simulate(None)), "the noise changed nothing"
    gap = float((daemon - loop).abs().max())
    assert torch.equal(daemon, loop), f"daemon and loop engine differ by up to {gap:.3e}"
    spent = [[s.dp_epsilon for s in stats] for stats, _ in results]
    want = [epsilon(r, sigma=0.5, delta=1e-6) for r in range(1, ROUNDS + 1)]
    assert spent == [want] * 4
    # the training loss is a function of private data: never published under DP
    assert all(
        s.train_loss is None or s.train_loss != s.train_loss for st, _ in results for s in st
    )


@pytest.mark.parametrize("dp", [False, True])
async def test_frames_carry_no_training_loss_under_dp(dp: bool) -> None:
    broker = MemoryBroker()
    configs = [
        config_from_dict(
            {
                "identity": {"peer": f"p{i}", "swarm": "loss"},
                "topology": {"family": "ring", "size": 2, "node": i},
                "learning": {"task": "synthetic", "model": "logreg"},
                "gossip": {"rounds": 1, "round_timeout_s": 20.0},
            }
            | ({"privacy": {"clip": 1.0, "sigma": 1.0}} if dp else {})
        )
        for i in range(2)
    ]
    peers = [memory_peer(broker, c) for c in configs]
    results = await asyncio.gather(*(drive(t, r) for t, r in peers))
    keyframes = [v for k, v in broker.retained.items() if "/key/" in k]
    assert len(keyframes) == 2  # every peer's first frame is a retained keyframe
    metas = [decode_envelope(frame, max_bytes=1 << 20).meta for frame in keyframes]
    assert all(("loss" in meta) is not dp for meta in metas), metas
    losses = [stats[0].train_loss for stats, _ in results]
    assert all((loss is None or math.isnan(loss)) is dp for loss in losses), losses


def test_without_a_seed_each_start_draws_its_own_noise() -> None:
    params = DpParams(clip=1.0, sigma=1.0)
    before, after = torch.zeros(64), torch.ones(64)
    one, two = (PeerPrivacy(params, index=0, seed=None) for _ in range(2))
    assert not torch.equal(one.release(before, after, round=0), two.release(before, after, round=0))
    fixed = [PeerPrivacy(params, index=0, seed=5).release(before, after, round=0) for _ in "ab"]
    assert torch.equal(fixed[0], fixed[1])


def test_a_resumed_peer_counts_the_rounds_it_may_have_released_twice() -> None:
    privacy = PeerPrivacy(DpParams(clip=1.0, sigma=2.0), index=1, seed=None)
    privacy.resumed(10, checkpoint_every=5)
    assert privacy.rounds == 15
    privacy.release(torch.zeros(3), torch.ones(3), round=10)
    assert privacy.epsilon == epsilon(16, sigma=2.0, delta=1e-5)


def _config(privacy: dict[str, object]) -> object:
    return config_from_dict(
        {
            "identity": {"peer": "p0"},
            "topology": {"family": "ring", "size": 4, "node": 0},
            "privacy": privacy,
        }
    )


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ({"clip": 1.0}, "privacy.sigma = None: expected a number > 0, set with privacy.clip"),
        ({"sigma": 1.0}, "privacy.clip = None"),
        ({"clip": 0, "sigma": 1}, "privacy.clip = 0.0: expected a finite number > 0"),
        ({"clip": 1, "sigma": -1}, "privacy.sigma = -1.0"),
        ({"clip": 1, "sigma": 1, "delta": 1.5}, "privacy.delta = 1.5: expected a number in (0, 1)"),
        ({"delta": 0}, "privacy.delta = 0.0"),
        ({"clip": 1, "sigma": 1, "seed": -3}, "privacy.seed = -3"),
        ({"clip": "big", "sigma": 1}, "privacy.clip = 'big'"),
        ({"clips": 1}, "privacy.clips: unknown key; did you mean 'clip'?"),
    ],
)
def test_bad_privacy_keys_are_named(privacy: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(privacy)
    assert message in str(info.value)


def test_privacy_is_off_by_default_and_on_with_clip_and_sigma() -> None:
    off = _config({})
    assert off.privacy.params is None  # type: ignore[attr-defined]
    on = _config({"clip": 0.5, "sigma": 2})
    assert on.privacy.params == DpParams(clip=0.5, sigma=2.0)  # type: ignore[attr-defined]


async def test_a_restarted_daemon_resumes_its_privacy_count(tmp_path: Path) -> None:
    def configs(rounds: int) -> list[PeerConfig]:
        return [
            config_from_dict(
                {
                    "identity": {"peer": f"p{i}", "swarm": "resume"},
                    "topology": {"family": "ring", "size": 2, "node": i},
                    "learning": {"task": "synthetic", "model": "logreg"},
                    "gossip": {"rounds": rounds, "round_timeout_s": 20.0},
                    "storage": {"checkpoint_dir": str(tmp_path / f"p{i}"), "checkpoint_every": 2},
                    "privacy": {"clip": 1.0, "sigma": 2.0},
                }
            )
            for i in range(2)
        ]

    first = await run_memory_swarm(configs(4))
    assert [s.dp_epsilon for s in first[0][0]] == [
        epsilon(t, sigma=2.0, delta=1e-5) for t in range(1, 5)
    ]
    second = await run_memory_swarm(configs(6))  # resumes at round 4, runs rounds 5 and 6
    assert [s.round for s in second[0][0]] == [5, 6]
    # 4 rounds, 2 more that may have been published before a crash, then 2 new ones
    assert second[0][0][-1].dp_epsilon == epsilon(4 + 2 + 2, sigma=2.0, delta=1e-5)


def test_the_noise_seed_is_hidden_when_the_config_is_printed() -> None:
    from peer.config import to_toml

    config = config_from_dict(
        {
            "identity": {"peer": "p0"},
            "topology": {"family": "ring", "size": 4, "node": 0},
            "privacy": {"clip": 1.0, "sigma": 2.0, "seed": 7},
        }
    )
    shown = to_toml(config)
    assert "seed = 7" not in shown
    assert "# seed = (set; hidden)" in shown
    assert "seed = 7" in to_toml(config, show_secrets=True)
