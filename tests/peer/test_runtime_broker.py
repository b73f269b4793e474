"""Runtimes over a real Mosquitto, in one process: hostile messages, and a broker outage."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import Counter
from collections.abc import Awaitable, Callable

import msgpack
import paho.mqtt.client as paho
import pytest
import torch
from paho.mqtt.enums import CallbackAPIVersion

from peer.broker import Broker
from peer.runtime import PeerRuntime, RoundStats
from peer.transport import Transport
from protocol.defaults import CONSENSUS_DIM
from protocol.envelope import Envelope, encode_envelope
from protocol.frame import Frame
from protocol.spec import Spec
from tests.peer.runtime_helpers import drive, mqtt_peer, peer_config

pytestmark = pytest.mark.broker

DEADLINE_S = 60.0
"""Generous: conditions are awaited, never assumed to hold after some time."""


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after DEADLINE_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)  # polling: these conditions change without an event
    raise AssertionError(f"not within {DEADLINE_S} s: {what}")


def rejected(transport: Transport, runtime: PeerRuntime) -> Counter[str]:
    """Everything a peer has rejected so far, at the transport (chunks) and the runtime."""
    return transport.stats.rejected + runtime.rejections.counts


def _configs(broker: Broker, swarm: str, rounds: int, **gossip: object) -> list:  # type: ignore[type-arg]
    return [
        peer_config(
            i,
            3,
            rounds=rounds,
            swarm=swarm,
            broker={
                "port": broker.port,
                "keepalive_s": 2,
                "reconnect_cap_s": 0.5,
                "reconnect_base_s": 0.1,
            },
            limits={"max_message_bytes": 4096},
            gossip={"round_timeout_s": 5.0, "keyframe_interval": 3, **gossip},
        )
        for i in range(3)
    ]


def _hostile_messages(swarm: str, model: str, captured: bytes) -> list[tuple[str, bytes]]:
    """Garbage, truncated, oversized, wrong-fingerprint, NaN and replayed frames "from" p1."""
    nan = Frame(
        kind="key",
        seq=10**6,
        base=None,
        codec=Spec("raw"),
        n=CONSENSUS_DIM,
        payload=torch.full((CONSENSUS_DIM,), math.nan).numpy().tobytes(),
    )
    fine = Frame(
        kind="key",
        seq=10**6,
        base=None,
        codec=Spec("raw"),
        n=CONSENSUS_DIM,
        payload=bytes(4 * CONSENSUS_DIM),
    )
    other = encode_envelope(Envelope(swarm=swarm, sender="p1", round=0, frame=fine, model="0" * 16))
    nan_env = msgpack.unpackb(
        encode_envelope(Envelope(swarm=swarm, sender="p1", round=0, frame=fine, model=model))
    )
    nan_env["payload"] = nan.payload
    key, delta = f"rumor/{swarm}/key/p1", f"rumor/{swarm}/delta/p1"
    return [
        (delta, b"\x00garbage\xff" * 7),
        (delta, captured[: len(captured) // 2]),
        (delta, b"\x80" + bytes(20_000)),
        (key, other),
        (key, msgpack.packb(nan_env, use_bin_type=True)),
        (delta, captured),
    ]


HOSTILE_REASONS = (
    "malformed_message",
    "truncated_message",
    "oversized_message",
    "fingerprint_mismatch",
    "non_finite_values",
    "replayed_message",
)


def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="attacker")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for where, payload in messages:
            client.publish(where, payload, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


async def _swarm(configs: list) -> tuple[list, list[int]]:  # type: ignore[type-arg]
    """Each peer's (stats, x), and the seq each peer's next frame would have had."""
    peers = [mqtt_peer(c) for c in configs]
    out = list(await asyncio.gather(*(drive(t, r, meet=True) for t, r in peers)))
    return out, [r.sender.next_seq for _, r in peers]


def _spy(port: int, where: str) -> tuple[paho.Client, list[bytes]]:
    """A client that keeps every payload published on ``where``; subscribed when returned."""
    captured: list[bytes] = []
    subscribed = threading.Event()

    def capture(client: object, userdata: object, message: paho.MQTTMessage) -> None:
        captured.append(bytes(message.payload))

    spy = paho.Client(CallbackAPIVersion.VERSION2, client_id="spy")
    spy.on_message = capture
    spy.on_subscribe = lambda *_: subscribed.set()
    spy.connect("127.0.0.1", port)
    spy.subscribe(where, qos=1)
    spy.loop_start()
    if not subscribed.wait(DEADLINE_S):
        spy.loop_stop()
        raise AssertionError(f"the spy's subscription to {where} was not acknowledged")
    return spy, captured


async def test_hostile_messages_are_counted_and_change_nothing(broker: Broker) -> None:
    # No round may time out while p0 holds (the two runs must mix the same frames): the barrier
    # waits as long as it takes, and a held peer is not given up for silence either.
    patient = {"round_timeout_s": 120.0, "silence_timeout_s": 120.0}
    rounds = 6
    clean, clean_seqs = await _swarm(_configs(broker, "clean", rounds, **patient))
    configs = _configs(broker, "hostile", rounds, mode="sync", **patient)
    peers = [mqtt_peer(c) for c in configs]
    model = peers[0][1].learner.fingerprint
    spy, captured = _spy(broker.port, "rumor/hostile/delta/p1")

    def every_kind_counted() -> bool:
        return all(
            rejected(*peers[peer])[reason] >= 1 for peer in (0, 2) for reason in HOSTILE_REASONS
        )

    async def attack(stats: RoundStats) -> None:
        if stats.round == 3:
            # p1's delta of round 1 is in at p0; the spy's thread may not have taken it yet.
            await wait_until(lambda: bool(captured), "the spy saw a delta of p1")
            await asyncio.to_thread(
                _publish, broker.port, _hostile_messages("hostile", model, captured[0])
            )
            # p0 holds its next round (the others wait at the barrier) until both receivers of
            # p1's topics have taken every hostile message in.
            await wait_until(every_kind_counted, "p0 and p2 rejected every hostile message")

    try:
        runs = [
            drive(t, r, attack if i == 0 else None, meet=True) for i, (t, r) in enumerate(peers)
        ]
        hostile = await asyncio.gather(*runs)
    finally:
        spy.loop_stop()
        spy.disconnect()
    # A presence that comes after a peer's round 0 forces a keyframe, and a keyframe changes
    # the float64 model by a rounding: the runs are comparable only on the periodic schedule.
    seqs = [r.sender.next_seq for _, r in peers]
    assert seqs == clean_seqs == [rounds] * 3, f"keyframes forced: {clean_seqs}, {seqs}"
    for (stats, x), (_, x_clean) in zip(hostile, clean, strict=True):
        assert stats[-1].round == rounds
        assert torch.equal(x, x_clean), "a rejected message changed a model"
    for peer in (0, 2):  # p1's in... out-neighbours: they subscribe to p1's topics
        counts = hostile[peer][0][-1].rejected
        for reason in HOSTILE_REASONS:
            assert counts.get(reason, 0) >= 1, (peer, reason, counts)


@pytest.mark.slow
async def test_broker_outage_every_peer_reconnects_and_finishes(broker: Broker) -> None:
    rounds = 20
    peers = [mqtt_peer(c) for c in _configs(broker, "outage", rounds, round_timeout_s=1.0)]
    connects_at: list[dict[int, int]] = [{} for _ in peers]
    """Per peer: round -> how many connections its transport had made when the round ended."""

    outage = asyncio.Event()
    held: set[int] = set()

    def back_together(peer: int) -> bool:
        """Every transport reconnected, and ``peer`` hears all its neighbours again."""
        _, runtime = peers[peer]
        live = runtime.liveness.live_set(runtime.hood.neighbours)
        return all(t.stats.connects >= 2 for t, _ in peers) and live == runtime.hood.neighbours

    def note(peer: int) -> Callable[[RoundStats], Awaitable[None]]:
        async def hook(stats: RoundStats) -> None:
            connects_at[peer][stats.round] = peers[peer][0].stats.connects
            if peer == 0 and stats.round == 3:  # mid-run: the others wait for p0's frames
                outage.set()
                await asyncio.to_thread(broker.stop)
                # Down until p1 and p2 have each run two rounds without the broker (so at
                # least one round timeout), while their reconnect attempts are refused.
                await wait_until(
                    lambda: (
                        not any(t.state.is_up for t, _ in peers)
                        and all(r.publish_failed >= 2 for _, r in peers[1:])
                    ),
                    "p1 and p2 saw the broker go down and failed two publishes",
                )
                await asyncio.to_thread(broker.launch)
            if outage.is_set() and peer not in held and (peer == 0 or stats.publish_failed >= 2):
                # With its link down a peer hears every neighbour's will and would run on alone
                # (consensus has no training time) to the end: hold each until the swarm is
                # back together, so that gossip after the outage can be checked.
                held.add(peer)
                await wait_until(lambda: back_together(peer), f"p{peer}: swarm back together")

        return hook

    runs = [drive(t, r, note(i)) for i, (t, r) in enumerate(peers)]
    results = await asyncio.gather(*runs)
    for i, ((transport, _), (stats, x)) in enumerate(zip(peers, results, strict=True)):
        assert [s.round for s in stats] == list(range(1, rounds + 1))
        assert torch.isfinite(x).all()
        assert transport.stats.connects >= 2, "never reconnected"
        after = [s for s in stats if connects_at[i][s.round] >= 2]
        assert any(s.received >= 1 for s in after), f"p{i}: no gossip after the broker came back"


@pytest.mark.slow
async def test_a_neighbour_gone_while_the_broker_was_down_is_not_believed_online(
    broker: Broker,
) -> None:
    """The broker crashes (SIGKILL: a stopped Mosquitto sends every client's will first) and
    restarts without persistence, so it retains nothing of p2, and p2, gone while it was down,
    left no will: p0 must stop believing p2 online once its presence is not said again on the
    new connection, and must keep p1, which reconnected. When p2 comes back, p0 sees it join
    (and so sends it a keyframe)."""
    configs = _configs(broker, "ghost", 5, silence_timeout_s=3.0)
    (t0, r0), (t1, r1), (t2, r2) = [mqtt_peer(c) for c in configs]
    async with contextlib.AsyncExitStack() as stack:
        for transport, runtime in ((t0, r0), (t1, r1)):
            await stack.enter_async_context(transport)
            await transport.state.wait_up()
            await stack.enter_async_context(runtime)
        async with t2:
            await t2.state.wait_up()
            async with r2:
                await wait_until(lambda: r0.liveness.announced() == {"p1", "p2"}, "p0 met both")
                broker.kill()
                await asyncio.to_thread(broker.stop)  # reaps it
                await wait_until(lambda: not t2.state.is_up, "p2 lost the broker")
        await asyncio.to_thread(broker.launch)
        await wait_until(lambda: t0.stats.connects == t1.stats.connects == 2, "both reconnected")
        await wait_until(lambda: r0.liveness.announced() == {"p1"}, "p0 forgot p2, kept p1")
        assert "p2" not in r0.liveness.live_set(r0.hood.neighbours)
        r0.inbound.joined = False
        t2, r2 = mqtt_peer(configs[2])
        async with t2, r2:
            await wait_until(lambda: r0.liveness.announced() == {"p1", "p2"}, "p2 is back")
            assert r0.inbound.joined, "p0 did not see p2 join again: no keyframe for it"
