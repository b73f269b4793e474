"""Without signatures anyone can speak for a peer: what one forged frame can do is bounded."""

from __future__ import annotations

import torch

from peer.runtime.inbound import MAX_PEERS_TRACKED, RESYNC_AFTER_REPLAYS, Inbound
from peer.runtime.liveness import Liveness
from peer.runtime.rejections import MAX_LOG_KEYS, Rejections
from peer.transport import Message
from protocol.choco import ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope
from protocol.frame import Frame
from protocol.spec import Spec
from protocol.topics import topic
from tests.peer.test_inbound import _inbound

N = 64


def _send(inbound: Inbound, frame: Frame, *, round: int) -> None:
    env = Envelope(swarm="s", sender="p1", round=round, frame=frame, model="ab" * 8)
    inbound.handle(
        Message(topic=topic(frame.kind, swarm="s", peer="p1"), payload=encode_envelope(env))
    )


def _forged_key(seq: int, value: float) -> Frame:
    payload = torch.full((N,), value).numpy().tobytes()
    return Frame(kind="key", seq=seq, base=None, codec=Spec("raw"), n=N, payload=payload)


def test_a_forged_huge_seq_silences_a_sender_for_a_few_keyframes_only() -> None:
    inbound = _inbound()
    real = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=2)
    _send(inbound, real.step(torch.full((N,), 1.0), seed=1), round=0)
    _send(inbound, _forged_key(2**62, 666.0), round=1)
    refused = 0
    for r in range(1, 20):
        _send(inbound, real.step(torch.full((N,), 1.0 + r), seed=1), round=r)
        copy = inbound.receiver.copy_of("p1")
        assert copy is not None
        if float(copy[0]) == 1.0 + r:
            break
        refused += 1
    else:
        raise AssertionError("the real sender never got through again")
    assert inbound.rejections.counts["replayed_message"] >= RESYNC_AFTER_REPLAYS - 1
    assert refused <= 2 * RESYNC_AFTER_REPLAYS, "a few keyframe intervals, not the whole run"


def test_a_forged_huge_round_does_not_make_a_sender_look_caught_up_for_ever() -> None:
    inbound = _inbound()
    real = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=1)
    _send(inbound, real.step(torch.full((N,), 1.0), seed=1), round=0)
    _send(inbound, _forged_key(1, 9.0), round=2**62)  # seq 1: looks like the next frame
    assert inbound.has_round("p1", 5)
    _send(inbound, real.step(torch.full((N,), 2.0), seed=1), round=1)  # seq 1: a "replay"
    _send(inbound, real.step(torch.full((N,), 3.0), seed=1), round=2)
    assert not inbound.has_round("p1", 5), "the real frame of round 2 unmasks the forgery"
    copy = inbound.copy_for("p1", 2, staleness=None)
    assert copy is not None
    assert float(copy[0]) == 3.0


def test_phantom_presence_is_tracked_up_to_a_bound() -> None:
    inbound = _inbound()
    for i in range(MAX_PEERS_TRACKED + 100):
        inbound.handle(Message(topic=topic("presence", swarm="s", peer=f"g{i}"), payload=b"online"))
    assert len(inbound.liveness.announced()) == MAX_PEERS_TRACKED
    assert inbound.rejections.counts["unknown_sender"] == 100


def test_rejection_log_bookkeeping_is_bounded() -> None:
    rejections = Rejections()
    for i in range(MAX_LOG_KEYS * 2):
        rejections.record(f"fake{i}", "malformed_message", "junk", now=0.0)
    assert len(rejections._last_log) <= MAX_LOG_KEYS
    assert rejections.counts["malformed_message"] == MAX_LOG_KEYS * 2


def test_liveness_starts_empty() -> None:
    assert Liveness(silence_timeout_s=1.0).announced() == frozenset()
