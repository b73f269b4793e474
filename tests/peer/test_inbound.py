"""The receiving side alone: what a neighbour can make a peer hold in memory."""

from __future__ import annotations

import time

import pytest
import torch

from peer.runtime.inbound import MAX_SNAPSHOTS_PER_SENDER, Inbound
from peer.runtime.liveness import Liveness
from peer.runtime.rejections import Rejections
from peer.transport import Message
from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope
from protocol.frame import Frame
from protocol.topics import topic
from protocol.validation import Expectations

N = 64


def _inbound() -> Inbound:
    expected = Expectations(
        swarm="s", model="ab" * 8, senders=frozenset({"p1"}), n_params=N, max_bytes=1 << 20
    )
    return Inbound(
        me="p0",
        prefix="rumor",
        expected=expected,
        receiver=ChocoReceiver(N),
        liveness=Liveness(silence_timeout_s=5.0),
        rejections=Rejections(),
    )


def test_a_sender_claiming_ever_later_rounds_cannot_grow_our_memory() -> None:
    inbound = _inbound()
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    for i in range(100):
        frame = sender.step(torch.full((N,), float(i)), seed=1)
        env = Envelope(swarm="s", sender="p1", round=1000 + 7 * i, frame=frame, model="ab" * 8)
        inbound.handle(
            Message(topic=topic(frame.kind, swarm="s", peer="p1"), payload=encode_envelope(env))
        )
    assert inbound.rejections.counts == {}, "every frame was valid"
    assert inbound.snapshot_bytes() == MAX_SNAPSHOTS_PER_SENDER * N * 4
    newest = inbound.copy_for("p1", 1000 + 7 * 99, staleness=None)
    assert newest is not None
    torch.testing.assert_close(newest, torch.full((N,), 99.0))


def test_a_peer_back_from_offline_is_a_new_incarnation() -> None:
    """Restarted without its checkpoint, p1 counts seq from 0 again: after its offline notice,
    its keyframe is taken as new (no replay) and nothing of the old copy survives."""
    inbound = _inbound()
    old = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    for i in range(5):
        _deliver(inbound, old.step(torch.full((N,), 1.0 + i), seed=1), round=i)
    inbound.handle(Message(topic=topic("presence", swarm="s", peer="p1"), payload=b"offline"))
    inbound.handle(Message(topic=topic("presence", swarm="s", peer="p1"), payload=b"online"))
    new = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    _deliver(inbound, new.step(torch.full((N,), -7.0), seed=1), round=0)
    assert inbound.rejections.counts == {}
    copy = inbound.copy_for("p1", 0, staleness=None)
    assert copy is not None
    torch.testing.assert_close(copy, torch.full((N,), -7.0))


def _deliver(inbound: Inbound, frame: Frame, *, round: int) -> None:
    env = Envelope(swarm="s", sender="p1", round=round, frame=frame, model="ab" * 8)
    inbound.handle(
        Message(topic=topic(frame.kind, swarm="s", peer="p1"), payload=encode_envelope(env))
    )


def test_a_peer_coming_back_online_asks_for_a_keyframe() -> None:
    inbound = _inbound()
    presence = topic("presence", swarm="s", peer="p1")
    inbound.handle(Message(topic=presence, payload=b"online"))
    assert inbound.joined, "a first announcement: the newcomer holds none of our frames"
    inbound.joined = False
    inbound.handle(Message(topic=presence, payload=b"online"))
    assert not inbound.joined, "a repeated online changes nothing"
    inbound.handle(Message(topic=presence, payload=b"offline"))
    inbound.handle(Message(topic=presence, payload=b"online"))
    assert inbound.joined


def test_a_frame_received_before_an_offline_notice_is_still_mixed() -> None:
    """A peer that finishes says offline right after its last frame: that frame counts."""
    inbound = _inbound()
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    _deliver(inbound, sender.step(torch.full((N,), 3.0), seed=1), round=299)
    inbound.handle(Message(topic=topic("presence", swarm="s", peer="p1"), payload=b"offline"))
    copy = inbound.copy_for("p1", 299, staleness=None)
    assert copy is not None
    torch.testing.assert_close(copy, torch.full((N,), 3.0))


def test_a_sync_frame_one_round_late_stands_in_only_if_the_next_does_not_come() -> None:
    inbound = _inbound()
    inbound.sync_floor = 0  # sync mode, receiving round 0
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    inbound.prune(1)  # round 0 mixed (timed out without p1)
    _deliver(inbound, sender.step(torch.full((N,), 1.0), seed=1), round=0)  # p1's, too late
    assert inbound.rejections.counts == {}, "a valid frame, not a rejected one"
    assert inbound.waiting_for(frozenset({"p1"}), 1) == ["p1"], "round 1 still waits for p1"
    late = inbound.copy_for("p1", 1, staleness=None)
    assert late is not None, "if p1's frame of round 1 does not come in time, round 0's is mixed"
    torch.testing.assert_close(late, torch.full((N,), 1.0))
    # p1's frame of round 1 comes in time: it is mixed, and the late one counted as not mixed.
    _deliver(inbound, sender.step(torch.full((N,), 3.0), seed=1), round=1)
    copy = inbound.copy_for("p1", 1, staleness=None)
    assert copy is not None
    torch.testing.assert_close(copy, torch.full((N,), 3.0))
    assert inbound.ignored.counts == {}
    inbound.prune(2)
    assert dict(inbound.ignored.counts) == {"stale_round": 1}


def test_a_late_frame_mixed_in_the_next_round_is_not_counted_and_used_once() -> None:
    inbound = _inbound()
    inbound.sync_floor = 0
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    inbound.prune(1)
    _deliver(inbound, sender.step(torch.full((N,), 1.0), seed=1), round=0)
    assert inbound.copy_for("p1", 1, staleness=None) is not None  # round 1 times out: mixed
    inbound.prune(2)
    assert inbound.ignored.counts == {}
    assert inbound.copy_for("p1", 2, staleness=None) is None, "not mixed a second time"


def test_a_sync_frame_two_rounds_late_is_counted_not_kept() -> None:
    inbound = _inbound()
    inbound.sync_floor = 0
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    inbound.prune(1)
    inbound.prune(2)
    _deliver(inbound, sender.step(torch.full((N,), 1.0), seed=1), round=0)
    assert dict(inbound.ignored.counts) == {"stale_round": 1}
    assert inbound.copy_for("p1", 2, staleness=None) is None
    # It still moved p1's public copy: the next delta applies on top of it.
    _deliver(inbound, sender.step(torch.full((N,), 3.0), seed=1), round=2)
    copy = inbound.copy_for("p1", 2, staleness=None)
    assert copy is not None
    torch.testing.assert_close(copy, torch.full((N,), 3.0))


def test_async_mode_counts_no_stale_rounds() -> None:
    inbound = _inbound()  # sync_floor None: staleness_bound decides what is mixed
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    inbound.prune(5)
    _deliver(inbound, sender.step(torch.full((N,), 1.0), seed=1), round=0)
    assert inbound.ignored.counts == {}
    assert inbound.copy_for("p1", 5, staleness=5) is not None


def _state(inbound: Inbound) -> tuple[object, ...]:
    """Everything a frame could change on the receiving side."""
    receiver = inbound.receiver
    copy = receiver.copy_of("p1")
    held = {r: inbound.copy_for("p1", r, staleness=None) for r in range(8)}
    return (
        receiver.senders,
        receiver.last_seq("p1"),
        None if copy is None else copy.tolist(),
        {r: None if c is None else c.tolist() for r, c in held.items()},
        inbound.liveness.live_set(frozenset({"p1"})),
    )


@pytest.mark.parametrize(("seq_ahead", "base_behind"), [(0, 2), (40, 1)])
def test_a_forged_delta_with_a_wrong_base_changes_nothing(seq_ahead: int, base_behind: int) -> None:
    """One injected frame must not silence the link: the sender's next valid deltas are still
    accepted and mixed, and the receiver ends where it would have without the injection."""
    codec = codec_from_spec("fp16")
    frames = []
    sender = ChocoSender(codec, N, keyframe_interval=10)
    for i in range(6):
        frames.append(sender.step(torch.linspace(-1.0, 1.0, N) * (i + 1), seed=1))
    clean, attacked = _inbound(), _inbound()
    for r, frame in enumerate(frames):
        _deliver(clean, frame, round=r)
        if r == 2:
            before = _state(attacked)
            seq = frame.seq + seq_ahead
            junk = codec.to_bytes(torch.ones(N))
            forged = Frame(
                kind="delta", seq=seq, base=seq - base_behind, codec=codec.spec, n=N, payload=junk
            )
            _deliver(attacked, forged, round=r)
            assert attacked.rejections.counts == {"unknown_base": 1}
            assert _state(attacked) == before, "a rejected frame changed receiver state"
            assert attacked.waiting_for(frozenset({"p1"}), r) == ["p1"], "no wait for p1"
        _deliver(attacked, frame, round=r)
    assert attacked.rejections.counts == {"unknown_base": 1}, "a valid delta was dropped"
    assert _state(attacked) == _state(clean)
    for r in range(len(frames)):
        got, expected = (
            attacked.copy_for("p1", r, staleness=None),
            clean.copy_for("p1", r, staleness=None),
        )
        assert got is not None
        assert expected is not None
        assert torch.equal(got, expected)


def test_a_peer_unconfirmed_after_a_reconnect_comes_back_as_a_new_incarnation() -> None:
    """Its presence lapsed (not said again after our reconnect): as after an offline, its
    return is a join, and its old copy is gone (it may count seq from 0 again)."""
    inbound = _inbound()
    presence = Message(topic=topic("presence", swarm="s", peer="p1"), payload=b"online")
    inbound.handle(presence)
    old = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    for i in range(3):
        _deliver(inbound, old.step(torch.full((N,), 1.0 + i), seed=1), round=i)
    now = time.monotonic()
    # down after the presence came, however coarse the clock; the recheck's deadline has passed
    inbound.liveness.reconnected(down_at=now + 1.0, now=now - inbound.liveness.silence_timeout_s)
    assert "p1" not in inbound.liveness.announced(), "the deadline has passed"
    inbound.joined = False
    inbound.handle(presence)
    assert inbound.joined
    assert inbound.receiver.copy_of("p1") is None
    new = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=10)
    _deliver(inbound, new.step(torch.full((N,), -7.0), seed=1), round=0)
    assert inbound.rejections.counts == {}
