"""A message delivered again (a retained keyframe, after a reconnect) is a duplicate, no replay;
an older frame, or the same seq with other bytes, is still a replay and changes nothing."""

from __future__ import annotations

import asyncio

import paho.mqtt.client as paho
import pytest
import torch
from paho.mqtt.enums import CallbackAPIVersion

from peer.broker import Broker
from peer.runtime.inbound import RESYNC_AFTER_REPLAYS, Inbound
from peer.transport import Message
from protocol.choco import ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope
from protocol.frame import Frame
from protocol.topics import TopicKind, topic
from tests.peer.test_inbound import N, _inbound, _state
from tests.peer.test_transport_mqtt import client, take

RECONNECT_WAIT_S = 60.0
"""Generous: the wait ends as soon as the message is in."""


def _bytes(frame: Frame, *, round: int) -> bytes:
    env = Envelope(swarm="s", sender="p1", round=round, frame=frame, model="ab" * 8)
    return encode_envelope(env)


def _send(inbound: Inbound, kind: TopicKind, data: bytes) -> None:
    inbound.handle(Message(topic=topic(kind, swarm="s", peer="p1"), payload=data))


def _frames(count: int, *, keyframe_interval: int) -> list[Frame]:
    sender = ChocoSender(codec_from_spec("fp16"), N, keyframe_interval=keyframe_interval)
    return [sender.step(torch.linspace(-1.0, 1.0, N) * (i + 1), seed=1) for i in range(count)]


def test_the_retained_keyframe_delivered_again_is_a_duplicate_and_changes_nothing() -> None:
    inbound = _inbound()
    frames = _frames(4, keyframe_interval=10)  # a keyframe, then deltas 1 to 3
    key = _bytes(frames[0], round=0)
    _send(inbound, "key", key)
    _send(inbound, "key", key)  # at once (QoS 1 may deliver twice)
    for r, frame in enumerate(frames[1:3], start=1):
        _send(inbound, "delta", _bytes(frame, round=r))
    before = _state(inbound)
    changed_before = inbound.changed.is_set()
    inbound.changed.clear()
    # Reconnects: the broker re-delivers the retained keyframe each time, older than the deltas.
    for _ in range(RESYNC_AFTER_REPLAYS + 2):
        _send(inbound, "key", key)
    assert inbound.rejections.counts == {}, "a re-delivery is no hostile event"
    assert dict(inbound.ignored.counts) == {"duplicate": RESYNC_AFTER_REPLAYS + 3}
    assert _state(inbound) == before
    assert changed_before
    assert not inbound.changed.is_set(), "nothing new to wake the barrier"
    # Not taken for a sender to start afresh either: its next delta still applies.
    _send(inbound, "delta", _bytes(frames[3], round=3))
    assert inbound.rejections.counts == {}
    assert inbound.receiver.last_seq("p1") == 3


def test_an_older_frame_or_the_same_seq_with_other_bytes_is_still_a_replay() -> None:
    inbound = _inbound()
    frames = _frames(4, keyframe_interval=2)  # keyframes 0 and 2, deltas 1 and 3
    sent = [_bytes(frame, round=r) for r, frame in enumerate(frames)]
    for frame, data in zip(frames, sent, strict=True):
        _send(inbound, frame.kind, data)
    before = _state(inbound)
    replays: list[tuple[TopicKind, bytes]] = [
        ("key", sent[0]),  # an older keyframe, not the last one accepted
        ("delta", sent[1]),  # an older delta
        ("delta", sent[3]),  # the last frame itself, but no keyframe: not what is retained
        ("key", _bytes(frames[2], round=7)),  # the last keyframe's seq, other bytes
    ]
    for kind, data in replays:
        _send(inbound, kind, data)
    assert dict(inbound.rejections.counts) == {"replayed_message": len(replays)}
    assert inbound.ignored.counts == {}
    assert _state(inbound) == before
    assert not inbound.has_round("p1", 4), "the replay's round 7 was not taken"


def test_after_an_offline_the_same_keyframe_is_taken_again() -> None:
    """The digest never stands in for the receiver's state: once the sender is forgotten, its
    retained keyframe resynchronises the receiver as before."""
    inbound = _inbound()
    key = _bytes(_frames(1, keyframe_interval=10)[0], round=0)
    _send(inbound, "key", key)
    presence = topic("presence", swarm="s", peer="p1")
    inbound.handle(Message(topic=presence, payload=b"offline"))
    inbound.handle(Message(topic=presence, payload=b"online"))
    assert inbound.receiver.last_seq("p1") is None
    _send(inbound, "key", key)
    assert inbound.rejections.counts == {}
    assert inbound.ignored.counts == {}
    assert inbound.receiver.last_seq("p1") == 0


def test_a_neighbour_that_left_leaves_no_digest_behind() -> None:
    inbound = _inbound()
    _send(inbound, "key", _bytes(_frames(1, keyframe_interval=10)[0], round=0))
    assert len(inbound._last_key) == 1
    inbound.forget("p1")
    assert inbound._last_key == {}


def _take_over(broker: Broker, client_id: str) -> None:
    """Connect as ``client_id`` and leave: the broker drops the client of that id that was
    connected, which sees its link go down and reconnects (a network blip of its own)."""
    taker = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    taker.connect(broker.host, broker.port)
    taker.loop_start()
    try:
        taker.publish("rumor/s/telemetry/taker", b"{}", qos=1).wait_for_publish(RECONNECT_WAIT_S)
    finally:
        taker.disconnect()
        taker.loop_stop()


@pytest.mark.broker
async def test_a_reconnect_re_delivers_the_retained_keyframe_and_no_rejection_is_counted(
    broker: Broker,
) -> None:
    """Over a real Mosquitto: p0's link drops and comes back; its transport re-subscribes and
    gets p1's retained keyframe again, older than the delta that followed it."""
    frames = _frames(2, keyframe_interval=10)
    key, delta = _bytes(frames[0], round=0), _bytes(frames[1], round=1)
    key_topic, delta_topic = (topic(k, swarm="s", peer="p1") for k in ("key", "delta"))
    inbound = _inbound()
    async with client(broker, "p1") as p1, client(broker, "p0") as p0:
        await p0.subscribe([key_topic, delta_topic])
        await p1.publish(key_topic, key, qos=1, retain=True)
        await p1.publish(delta_topic, delta, qos=1)
        for message in await take(p0, 2):
            inbound.handle(message)
        assert inbound.receiver.last_seq("p1") == 1
        before = _state(inbound)
        await asyncio.to_thread(_take_over, broker, "p0")
        [again] = await take(p0, 1, wait_s=RECONNECT_WAIT_S)
        assert p0.stats.connects >= 2, "p0 reconnected"
        assert (again.topic, again.payload, again.retained) == (key_topic, key, True)
        inbound.handle(again)
    assert inbound.rejections.counts == {}, "a reconnect is no hostile event"
    assert dict(inbound.ignored.counts) == {"duplicate": 1}
    assert _state(inbound) == before
