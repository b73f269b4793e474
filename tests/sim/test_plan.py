"""The planner's CHOCO sync tracking and byte counts, against real senders, receivers, envelopes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope
from protocol.errors import UnknownBase
from protocol.fingerprint import fingerprint
from protocol.seeds import frame_seed, sender_seed, sender_seeds
from sim.config import SimConfig, failures_from_mapping
from sim.failure_masks import FailureModel
from sim.plan import FrameSeeds, Planner
from sim.runner import Simulation
from sim.traffic import SWARM, peer_name
from topology.schedules import schedule_from_spec

# Whether copies fall out of sync: lost messages do; crashes and churn do not, since a peer back
# online resumes with a keyframe and its neighbours send it theirs.
FAILURES = [
    ({"drop": 0.3}, True),
    ({"crash": "1@4-11,3@2-20"}, False),
    ({"churn": "up=4,down=2"}, False),
    ({"partition_window": "5-12", "drop": 0.1}, True),
]


@pytest.mark.parametrize(("failures", "stale_expected"), FAILURES)
def test_mixable_edges_match_real_choco_receivers(
    failures: dict[str, object], stale_expected: bool
) -> None:
    n, rounds = 8, 40
    model = FailureModel(
        failures_from_mapping(failures), peers=n, rounds=rounds, local_steps=1, seed=5
    )
    planner = Planner(model, peers=n, keyframe_interval=4, seed=5)
    schedule = schedule_from_spec("random_regular:d=3", n, seed=1)
    senders = [ChocoSender(codec_from_spec("sign"), 3, keyframe_interval=4) for _ in range(n)]
    receivers = [ChocoReceiver(3) for _ in range(n)]
    stale_seen = 0
    was_alive = np.ones(n, dtype=bool)
    for round in range(rounds):
        plan = planner.plan(round, schedule.edges_at(round))
        _daemon_presence_rules(plan.alive, was_alive, plan.src, plan.dst, senders, receivers)
        was_alive = plan.alive.copy()
        frames = {i: senders[i].step(torch.randn(3), seed=i) for i in range(n) if plan.alive[i]}
        expected = np.zeros(len(plan.src), dtype=bool)
        for e, (src, dst) in enumerate(zip(plan.src.tolist(), plan.dst.tolist(), strict=True)):
            if not plan.delivered[e]:
                continue
            assert src in frames
            assert plan.alive[dst]
            try:
                receivers[dst].apply(peer_name(src), frames[src])
                expected[e] = True
            except UnknownBase:
                stale_seen += 1
        assert plan.mix.tolist() == expected.tolist(), f"round {round}"
        assert plan.keyframe.tolist() == [
            bool(plan.alive[i] and frames[i].kind == "key") for i in range(n)
        ]
    assert (stale_seen > 0) == stale_expected, f"{stale_seen} stale deliveries"


def _daemon_presence_rules(
    alive: np.ndarray,
    was_alive: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    senders: list[ChocoSender],
    receivers: list[ChocoReceiver],
) -> None:
    """What peer/runtime does on presence changes: an offline notice makes every receiver
    forget the sender; a peer back online resumes with a keyframe, and so do the senders that
    feed it."""
    for i in np.flatnonzero(was_alive & ~alive).tolist():
        for receiver in receivers:
            receiver.forget(peer_name(i))
    for i in np.flatnonzero(alive & ~was_alive).tolist():
        for j in {i} | {int(s) for s, d in zip(src, dst, strict=True) if d == i}:
            if alive[j]:
                senders[j].force_keyframe()


def test_bytes_sent_and_delivered_equal_the_encoded_envelopes() -> None:
    failures = failures_from_mapping({"drop": 0.2, "crash": "2@3-9"})
    config = SimConfig(
        task="consensus",
        topology="ring",
        peers=6,
        rounds=15,
        dim=300,
        codec="sign",
        keyframe_interval=5,
        failures=failures,
    )
    sim = Simulation(config)
    stats = list(sim.run())
    replay = Planner(sim.failures, peers=6, keyframe_interval=5, seed=0)
    edges = schedule_from_spec("ring", 6).edges_at(0)
    senders = [ChocoSender(codec_from_spec("sign"), 300, keyframe_interval=5) for _ in range(6)]
    model = fingerprint([("params", (300,), "float32")])
    receivers = [ChocoReceiver(300) for _ in range(6)]
    sent = delivered = 0
    was_alive = np.ones(6, dtype=bool)
    for round in range(15):
        plan = replay.plan(round, edges)
        _daemon_presence_rules(plan.alive, was_alive, plan.src, plan.dst, senders, receivers)
        was_alive = plan.alive.copy()
        sizes = {}
        for i in np.flatnonzero(plan.alive).tolist():
            frame = senders[i].step(torch.randn(300), seed=0)
            meta = {"samples": config.batch_size * config.local_steps}  # the daemon's meta
            env = Envelope(
                swarm=SWARM, sender=peer_name(i), round=round, frame=frame, model=model, meta=meta
            )
            sizes[i] = len(encode_envelope(env))
        sent += sum(sizes.values())
        delivered += sum(sizes[int(s)] for s in plan.src[plan.delivered])
        assert (stats[round].bytes_sent, stats[round].bytes_delivered) == (sent, delivered)
    assert delivered < 2 * sent, "some messages were lost"


def test_frame_seeds_have_no_peer_limit_and_follow_the_run_seed() -> None:
    """100,000 peers plan a round (the old 16-bit peer index raised ValueError), each with the
    seed a daemon at that index uses, and run seed 65,536 no longer replays seed 0's streams."""
    n = 100_000
    failures = FailureModel(failures_from_mapping({}), peers=n, rounds=1, local_steps=1, seed=0)
    planner = Planner(failures, peers=n, keyframe_interval=10, seed=0)
    seeds = planner.plan(0, schedule_from_spec("ring", n).edges_at(0)).seeds
    assert len(set(seeds)) == n
    assert seeds[n - 1] == frame_seed(sender_seed(0, n - 1), 0)
    zeros = np.zeros(4, dtype=np.int64)
    assert list(FrameSeeds(sender_seeds(65_536, 4), zeros)) != list(
        FrameSeeds(sender_seeds(0, 4), zeros)
    )


def test_mixing_reaches_peers_past_65536() -> None:
    """Peer indices are 64-bit from plan to mixer: on a ring of 70,000 peers (one parameter
    each, so the test is cheap), the peers either side of 65,536 mix exactly their own ring
    neighbours, as a float64 reference computes."""
    n = 70_000
    sim = Simulation(SimConfig(task="consensus", topology="ring", peers=n, rounds=1, dim=1))
    x0 = sim.engine.params().clone()
    plan = sim.planner.plan(0, sim.topology.edges_at(0))
    assert plan.src.dtype == np.int64
    assert int(plan.src.max()) == n - 1
    sim.engine.step(plan)
    x = sim.engine.params()
    for i in (0, 65_535, 65_536, 65_537, n - 1):
        left, right = x0[(i - 1) % n], x0[(i + 1) % n]
        expected = x0[i] + sim.gamma * ((left + right) / 3 - (2 / 3) * x0[i])
        torch.testing.assert_close(x[i], expected, rtol=1e-12, atol=1e-12)
