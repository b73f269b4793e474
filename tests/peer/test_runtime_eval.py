"""The held-out evaluation runs every ``learning.eval_every`` rounds and at the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from peer.config import PeerConfig
from peer.runtime import LocalLearner, PeerRuntime, load_learner
from peer.runtime.neighbours import static_neighbourhood
from peer.transport import MemoryBroker, MemoryTransport, Presence
from protocol.topics import topic
from tests.peer.runtime_helpers import drive, peer_config


def _counting_peer(
    broker: MemoryBroker, config: PeerConfig
) -> tuple[MemoryTransport, PeerRuntime, list[int]]:
    """A peer whose learner records the round of every evaluation it is asked for."""
    ident = config.identity
    presence = Presence(topic=topic("presence", swarm=ident.swarm, peer=ident.peer))
    transport = MemoryTransport(broker, client_id=ident.peer, presence=presence)
    hood = static_neighbourhood(config.topology, me=ident.peer)
    assert hood is not None
    learner: LocalLearner = load_learner(config, index=hood.index, peers=hood.size)
    runtime = PeerRuntime(config, transport, learner, neighbourhood=hood)
    calls: list[int] = []
    measure = learner.accuracy

    def accuracy(x: object) -> float | None:
        calls.append(runtime.round)
        return measure(x)  # type: ignore[arg-type]

    learner.accuracy = accuracy  # type: ignore[method-assign]
    return transport, runtime, calls


def _config(index: int, rounds: int | None, eval_every: int) -> PeerConfig:
    learning = {"task": "synthetic", "model": "logreg", "eval_every": eval_every}
    return peer_config(index, 2, rounds=rounds or 1, learning=learning)


async def test_evaluation_runs_every_eval_every_rounds_and_in_the_last() -> None:
    broker = MemoryBroker()
    transport, runtime, calls = _counting_peer(broker, _config(0, 7, eval_every=3))
    # Its neighbour is not started: with startup_grace_s the default, round 1 would wait for it.
    runtime.liveness.startup_grace_s = 0.0
    stats, _ = await drive(transport, runtime)
    assert calls == [3, 6, 7]
    assert [s.evaluated_at for s in stats] == [None, None, 3, 3, 3, 6, 7]
    assert [s.accuracy is None for s in stats] == [True, True] + [False] * 5
    # A round that does not evaluate reports the last measured value, and no time for it.
    assert stats[3].accuracy == stats[2].accuracy
    assert all(s.timings.evaluate == 0.0 for i, s in enumerate(stats) if i + 1 not in calls)


async def test_a_stop_during_a_round_makes_it_the_last_and_evaluated() -> None:
    config = _config(0, None, eval_every=100)
    config = replace(config, gossip=replace(config.gossip, rounds=None))  # until stopped
    transport, runtime, calls = _counting_peer(MemoryBroker(), config)
    runtime.liveness.startup_grace_s = 0.0
    train = runtime.learner.train

    def train_then_stop(x: torch.Tensor, round: int) -> tuple[torch.Tensor, float]:
        if round == 2:  # as a SIGTERM that arrives while round 3 trains
            runtime.stop()
        return train(x, round)

    runtime.learner.train = train_then_stop  # type: ignore[method-assign]
    stats, _ = await drive(transport, runtime)
    assert [s.round for s in stats] == [1, 2, 3]
    assert calls == [3]
    assert stats[-1].evaluated_at == 3
    assert stats[-1].accuracy is not None


async def test_training_evaluation_and_checkpoints_run_on_one_thread_of_their_own(
    tmp_path: Path,
) -> None:
    # Not the event loop's thread, and not a pool's changing threads: each thread that trains
    # keeps a model-sized workspace and a malloc arena of its own.
    config = peer_config(
        0,
        2,
        rounds=6,
        learning={"task": "synthetic", "model": "logreg", "eval_every": 2},
        checkpoint_dir=tmp_path,
    )
    transport, runtime, _ = _counting_peer(MemoryBroker(), config)
    runtime.liveness.startup_grace_s = 0.0
    threads: dict[str, set[int]] = {}

    def recorded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: object) -> object:
            threads.setdefault(name, set()).add(threading.get_ident())
            return fn(*args)

        return call

    learner = runtime.learner
    learner.train = recorded("train", learner.train)  # type: ignore[method-assign]
    learner.accuracy = recorded("evaluate", learner.accuracy)  # type: ignore[method-assign]
    runtime._checkpoint = recorded("checkpoint", runtime._checkpoint)  # type: ignore[method-assign]
    await drive(transport, runtime)
    assert sorted(threads) == ["checkpoint", "evaluate", "train"]
    used = set().union(*threads.values())
    assert len(used) == 1
    assert used != {threading.get_ident()}
