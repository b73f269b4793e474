"""``[availability]``: the policy, the paused presence, and paused peers in an in-memory swarm."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import pytest
import torch

from peer.availability import AvailabilityGate, PresenceAnnouncer, Reading, pause_reason
from peer.config import AvailabilityConfig, PeerConfig, config_from_dict
from peer.runtime import PeerRuntime, RoundStats, load_learner
from peer.runtime.neighbours import static_neighbourhood
from peer.transport import MemoryBroker, MemoryTransport
from protocol.errors import ConfigError
from protocol.presence import PresenceState, decode_presence, encode_presence
from protocol.signing import SigningKey, Trust
from protocol.topics import topic
from tests.peer.runtime_helpers import peer_config

NOON = Reading(minute=12 * 60, charging=True, battery=90.0, cpu_busy=0.0)


@pytest.mark.parametrize(
    ("config", "reading", "paused"),
    [
        (AvailabilityConfig(), NOON, False),
        (AvailabilityConfig(hours="22:00-06:00"), NOON, True),
        (AvailabilityConfig(hours="09:00-13:00"), NOON, False),
        (AvailabilityConfig(charging_only=True), dataclasses.replace(NOON, charging=False), True),
        (AvailabilityConfig(charging_only=True), dataclasses.replace(NOON, charging=None), False),
        (AvailabilityConfig(battery_min=50), dataclasses.replace(NOON, battery=40.0), False),
        (
            AvailabilityConfig(battery_min=50),
            dataclasses.replace(NOON, battery=40.0, charging=False),
            True,
        ),
        (AvailabilityConfig(cpu_busy_max=30), dataclasses.replace(NOON, cpu_busy=31.0), True),
        (AvailabilityConfig(cpu_busy_max=30), dataclasses.replace(NOON, cpu_busy=29.0), False),
    ],
)
def test_pause_reason(config: AvailabilityConfig, reading: Reading, paused: bool) -> None:
    assert (pause_reason(config, reading) is not None) == paused


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"hours": "25:00-01:00"}, "availability.hours"),
        ({"hours": "22:00"}, "availability.hours"),
        ({"hours": "06:00-06:00"}, "empty window"),
        ({"cpu_busy_max": -1}, "availability.cpu_busy_max"),
        ({"check_every_s": 0}, "availability.check_every_s"),
        ({"hour": "22:00-06:00"}, "did you mean 'hours'"),
    ],
)
def test_bad_availability_is_one_clear_error(table: dict[str, object], message: str) -> None:
    data = {"identity": {"peer": "p0"}, "topology": {"membership": True}, "availability": table}
    data["learning"] = {"peers": 2, "partition_index": 0}
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_signed_presence_orders_pauses_within_an_epoch() -> None:
    key = SigningKey.from_seed(bytes(32))
    trust = Trust({"a": key.public_bytes()})

    def state(online: bool, paused: bool, seq: int) -> PresenceState:
        data = encode_presence(
            swarm="s", sender="a", online=online, epoch=5, key=key, paused=paused, seq=seq
        )
        return decode_presence(data, swarm="s", peer="a", trust=trust)

    online, paused, back, will = (
        state(True, False, 0),
        state(True, True, 1),
        state(True, False, 2),
        state(False, False, 0),
    )
    assert paused.paused
    assert paused.online
    assert not back.paused
    assert paused.after(online)
    assert back.after(paused)
    assert will.after(back)
    assert not paused.after(back), "a replayed pause must not silence a resumed peer"
    assert decode_presence(b"paused", swarm="s", peer="a", trust=None).paused


def test_a_replayed_pause_changes_nothing_in_the_receiver() -> None:
    from peer.runtime.inbound import Inbound
    from peer.runtime.liveness import Liveness
    from peer.runtime.rejections import Rejections
    from peer.transport import Message
    from protocol.choco import ChocoReceiver
    from protocol.validation import Expectations

    key = SigningKey.from_seed(bytes(32))
    live = Liveness(silence_timeout_s=60.0)
    rejections = Rejections()
    inbound = Inbound(
        me="b",
        prefix="rumor",
        expected=Expectations(
            swarm="s",
            model="0" * 16,
            senders=frozenset({"a"}),
            n_params=1,
            max_bytes=1024,
            trust=Trust({"a": key.public_bytes()}),
        ),
        receiver=ChocoReceiver(1, dtype=torch.float32, max_abs=1e6),
        liveness=live,
        rejections=rejections,
    )
    where = topic("presence", swarm="s", peer="a")

    def send(paused: bool, seq: int) -> None:
        data = encode_presence(
            swarm="s", sender="a", online=True, epoch=9, key=key, paused=paused, seq=seq
        )
        inbound.handle(Message(topic=where, payload=data))

    send(True, 1)
    assert not live.alive("a")
    assert "a" in live.announced()
    send(False, 2)
    assert live.alive("a")
    send(True, 1)  # the old pause, replayed
    assert live.alive("a")
    assert rejections.counts["replayed_message"] == 1


class Switch:
    """Readings whose hour a test sets: inside or outside a 10:00-11:00 window."""

    def __init__(self, inside: bool) -> None:
        self.inside = inside

    def read(self) -> Reading:
        return dataclasses.replace(NOON, minute=10 * 60 + 30 if self.inside else 12 * 60)


def _peer(
    broker: MemoryBroker, config: PeerConfig, readings: Switch
) -> tuple[MemoryTransport, PeerRuntime, AvailabilityGate]:
    ident = config.identity
    announcer = PresenceAnnouncer(
        topic=topic("presence", swarm=ident.swarm, peer=ident.peer),
        swarm=ident.swarm,
        peer=ident.peer,
        key=None,
    )
    window = AvailabilityConfig(hours="10:00-11:00", check_every_s=0.05)
    config = dataclasses.replace(config, availability=window)
    gate = AvailabilityGate(window, readings, announcer=announcer)
    gate.start_paused()
    transport = MemoryTransport(broker, client_id=ident.peer, presence=announcer.presence())
    hood = static_neighbourhood(config.topology, me=ident.peer)
    assert hood is not None
    learner = load_learner(config, index=hood.index, peers=hood.size)
    runtime = PeerRuntime(config, transport, learner, neighbourhood=hood, gate=gate)
    return transport, runtime, gate


async def _rounds(
    transport: MemoryTransport,
    runtime: PeerRuntime,
    out: list[RoundStats],
    on_round: Callable[[RoundStats], Awaitable[None]] | None = None,
) -> None:
    async with transport:
        await transport.state.wait_up()
        async with runtime:
            async for stats in runtime.rounds():
                out.append(stats)
                if on_round is not None:
                    await on_round(stats)


async def _until(condition: Callable[[], bool]) -> None:
    """Poll (the gate and liveness have no change event), failing after 30 s, never hanging."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_paused_peers_neither_train_nor_stall_the_others() -> None:
    # A long round timeout: were p0 to wait for a paused neighbour, it would count timeouts.
    gossip = {"round_timeout_s": 30.0, "startup_grace_s": 30.0}
    configs = [peer_config(i, 3, family="complete", rounds=8, gossip=gossip) for i in range(3)]
    broker = MemoryBroker()
    peers = [_peer(broker, c, Switch(inside=i == 0)) for i, c in enumerate(configs)]
    stats: list[list[RoundStats]] = [[], [], []]
    paused = [
        asyncio.create_task(_rounds(t, r, stats[i])) for i, (t, r, _) in enumerate(peers[1:], 1)
    ]
    await _until(lambda: all(g.paused for _, _, g in peers[1:]))
    await _rounds(peers[0][0], peers[0][1], stats[0])
    start = peers[0][1].learner.start
    one_copy = start.numel() * start.element_size()
    for _, runtime, _ in peers[1:]:  # p0's 8 frames came in; a paused peer keeps the newest only
        await _until(lambda r=runtime: 0 < r.inbound.snapshot_bytes() <= one_copy)  # type: ignore[misc]
        runtime.stop()
    await asyncio.gather(*paused)
    assert [s.round for s in stats[0]] == list(range(1, 9))
    assert stats[0][-1].timeouts == 0
    assert [s.alive for s in stats[0]] == [0] * 8
    assert [s.received for s in stats[0]] == [0] * 8
    for i in (1, 2):
        assert stats[i] == [], f"p{i} trained while paused"
        runtime = peers[i][1]
        assert runtime.round == 0
        assert torch.equal(runtime.x, runtime.learner.start)
        assert peers[i][2].pauses == 1


async def test_a_resumed_peer_rejoins_at_its_neighbours_round() -> None:
    gossip = {"round_timeout_s": 30.0, "startup_grace_s": 30.0}
    configs = [peer_config(i, 2, family="ring", rounds=12, gossip=gossip) for i in range(2)]
    broker = MemoryBroker()
    switch = Switch(inside=False)
    p0 = _peer(broker, configs[0], Switch(inside=True))
    p1 = _peer(broker, configs[1], switch)
    s0: list[RoundStats] = []
    s1: list[RoundStats] = []
    late = asyncio.create_task(_rounds(p1[0], p1[1], s1))
    await _until(lambda: p1[2].paused)

    async def wake(stats: RoundStats) -> None:
        if stats.round == 5:  # p1 resumes; p0 goes on once it sees p1 back
            switch.inside = True
            await _until(lambda: p0[1].liveness.alive("p1"))

    await asyncio.gather(_rounds(p0[0], p0[1], s0, wake), late)
    assert s0[-1].timeouts == 0
    assert s1[-1].timeouts == 0
    # p0's newest frame when p1 woke was of round 4: p1 runs that round first, not rounds 0 to 3.
    assert s1[0].round == 5, "p1 replayed the rounds it sat out instead of rejoining"
    assert s1[-1].round == 12
    assert s1[-1].done
    assert sum(s.received for s in s0) >= 1, "p0 never mixed the resumed p1"
    assert p1[2].pauses == 1


async def test_signed_announcements_reach_a_receiver_in_order() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    trust = Trust({"a": key.public_bytes()})
    where = topic("presence", swarm="s", peer="a")
    announcer = PresenceAnnouncer(topic=where, swarm="s", peer="a", key=key)
    broker = MemoryBroker()
    sender = MemoryTransport(broker, client_id="a", presence=announcer.presence())
    receiver = MemoryTransport(broker, client_id="b")
    seen: list[PresenceState] = []
    async with sender, receiver:
        await sender.state.wait_up()
        await receiver.state.wait_up()
        await receiver.subscribe([where])
        await announcer.announce(sender, paused=True)
        await announcer.announce(sender, paused=False)
        async with asyncio.timeout(30):
            async for message in receiver.messages():
                seen.append(decode_presence(message.payload, swarm="s", peer="a", trust=trust))
                if len(seen) == 3:
                    break
    # The retained online of the connection, then paused, then online again: each newer.
    assert [(s.online, s.paused) for s in seen] == [(True, False), (True, True), (True, False)]
    assert seen[1].after(seen[0])
    assert seen[2].after(seen[1])
    assert len({s.epoch for s in seen}) == 1
