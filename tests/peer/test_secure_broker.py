"""A ``rumor secure`` swarm against a real Mosquitto with TLS, client certificates and the ACL."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from peer.broker import Broker
from peer.runtime.inbound import Inbound
from peer.runtime.liveness import Liveness
from peer.runtime.rejections import Rejections
from peer.security.credentials import load_signing_key, load_trust
from peer.security.swarm import SwarmPlan, init_swarm, revoke_peer
from peer.transport import Backoff, Message, MqttSettings, MqttTransport
from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec
from protocol.envelope import Envelope, encode_envelope, sign_envelope
from protocol.topics import topic
from protocol.validation import Expectations

pytestmark = [pytest.mark.broker, pytest.mark.slow]

WAIT_S = 10.0
N = 32
MODEL = "ab" * 8


@pytest.fixture(scope="module")
def swarm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("swarm")
    init_swarm(directory, SwarmPlan(swarm="lab", peers=("p0", "p1", "p2")))
    return directory


@pytest.fixture
def tls_broker(swarm_dir: Path, tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(secure=swarm_dir, log_dir=tmp_path / "mosquitto")
    broker.launch()
    try:
        yield broker
    finally:
        broker.stop()


def _settings(broker: Broker, folder: Path | None, *, ca: Path) -> MqttSettings:
    return MqttSettings(
        client_id=f"test-{random.getrandbits(32):08x}",
        host=broker.host,
        port=broker.port,
        tls_ca=ca,
        tls_cert=None if folder is None else folder / "client.crt",
        tls_key=None if folder is None else folder / "client.key",
        connect_timeout_s=3.0,
        backoff=Backoff(base_s=0.05, cap_s=0.2),
    )


@contextlib.asynccontextmanager
async def _client(broker: Broker, swarm: Path, who: str) -> AsyncIterator[MqttTransport]:
    folder = swarm / ("watch" if who == "watch" else f"peers/{who}")
    async with MqttTransport(_settings(broker, folder, ca=swarm / "ca.crt")) as link:
        await asyncio.wait_for(link.state.wait_up(), WAIT_S)
        yield link


async def _never_connects(settings: MqttSettings) -> bool:
    async with MqttTransport(settings) as link:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(link.state.wait_up(), 2.0)
        return link.stats.connects == 0 and not link.state.is_up


async def test_a_client_without_a_certificate_or_from_another_ca_cannot_connect(
    tls_broker: Broker, swarm_dir: Path, tmp_path: Path
) -> None:
    assert await _never_connects(_settings(tls_broker, None, ca=swarm_dir / "ca.crt"))
    other = tmp_path / "other"
    init_swarm(other, SwarmPlan(swarm="lab", peers=("p0",)))
    # A certificate of another swarm's CA, even trusting our broker's CA, is refused.
    stranger = _settings(tls_broker, other / "peers" / "p0", ca=swarm_dir / "ca.crt")
    assert await _never_connects(stranger)
    plain = MqttSettings(client_id="plain", host=tls_broker.host, port=tls_broker.port)
    assert await _never_connects(plain)


async def _next(link: MqttTransport) -> Message:
    async with asyncio.timeout(WAIT_S):
        async for message in link.messages():
            return message
    raise AssertionError("the message stream ended")


async def test_a_peer_cannot_publish_on_another_peers_topics(
    tls_broker: Broker, swarm_dir: Path
) -> None:
    async with (
        _client(tls_broker, swarm_dir, "p2") as reader,
        _client(tls_broker, swarm_dir, "p1") as p1,
    ):
        await reader.subscribe(["rumor/lab/key/+", "rumor/lab/presence/+"])
        await p1.publish("rumor/lab/key/p0", b"p1 speaking for p0", qos=1)
        await p1.publish("rumor/lab/presence/p0", b"offline", qos=1)
        await p1.publish("rumor/lab/key/p1", b"p1 speaking for itself", qos=1)
        got = await _next(reader)
        assert (got.topic, got.payload) == ("rumor/lab/key/p1", b"p1 speaking for itself")


async def test_the_watch_identity_reads_but_cannot_write(
    tls_broker: Broker, swarm_dir: Path
) -> None:
    async with (
        _client(tls_broker, swarm_dir, "watch") as watch,
        _client(tls_broker, swarm_dir, "p0") as p0,
    ):
        await watch.subscribe(["rumor/lab/telemetry/+"])
        await p0.subscribe(["rumor/lab/telemetry/+"])
        await watch.publish("rumor/lab/telemetry/watch", b'{"round": 1}', qos=1)
        await watch.publish("rumor/lab/telemetry/p0", b'{"round": 1}', qos=1)
        await p0.publish("rumor/lab/telemetry/p0", b'{"round": 2}', qos=1)
        got = await _next(watch)
        assert (got.topic, got.payload) == ("rumor/lab/telemetry/p0", b'{"round": 2}')
        again = await _next(p0)
        assert again.payload == b'{"round": 2}'


def _receiver(swarm_dir: Path) -> Inbound:
    trust = load_trust(swarm_dir / "trust.toml", required=True)
    expected = Expectations(
        swarm="lab",
        model=MODEL,
        senders=frozenset({"p0", "p1", "p2"}),
        n_params=N,
        max_bytes=1 << 20,
        trust=trust,
    )
    return Inbound(
        me="p2",
        prefix="rumor",
        expected=expected,
        receiver=ChocoReceiver(N),
        liveness=Liveness(silence_timeout_s=60.0),
        rejections=Rejections(),
    )


async def test_forged_replayed_and_unsigned_frames_are_refused_over_tls(
    tls_broker: Broker, swarm_dir: Path
) -> None:
    """Someone holds p0's TLS certificate but not its signing key: the broker lets them publish
    on p0's topics, and the receivers still believe nothing they send."""
    key_p0 = load_signing_key(swarm_dir / "peers/p0/signing.key")
    key_p1 = load_signing_key(swarm_dir / "peers/p1/signing.key")
    sender = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=1)

    def frame(value: float, seq_round: int) -> Envelope:
        f = sender.step(torch.full((N,), value), seed=0)
        return Envelope(swarm="lab", sender="p0", round=seq_round, frame=f, model=MODEL)

    first = frame(1.0, 0)
    good = sign_envelope(first, key_p0)
    forged = frame(50.0, 1)
    flipped = bytearray(sign_envelope(forged, key_p0))
    flipped[-100] ^= 0x01
    attacks = [
        sign_envelope(forged, key_p1),  # signed by p1, published as p0
        bytes(flipped),  # one payload byte flipped
        sign_envelope(replace(first, round=3), key_p0),  # a replay: seq 0 again, other bytes
        good,  # the same message again (as a retained one re-delivered): a duplicate
        encode_envelope(forged),  # unsigned
    ]
    inbound = _receiver(swarm_dir)
    key_topic = topic("key", swarm="lab", peer="p0")
    async with (
        _client(tls_broker, swarm_dir, "p2") as reader,
        _client(tls_broker, swarm_dir, "p0") as p0,
    ):
        await reader.subscribe([key_topic])
        await p0.publish(key_topic, good, qos=1)
        inbound.handle(await _next(reader))
        kept = inbound.receiver.copy_of("p0")
        assert kept is not None
        kept = kept.clone()
        for data in attacks:
            await p0.publish(key_topic, data, qos=1)
            inbound.handle(await _next(reader))
    assert dict(inbound.rejections.counts) == {
        "bad_signature": 2,
        "replayed_message": 1,
        "unsigned": 1,
    }
    assert dict(inbound.ignored.counts) == {"duplicate": 1}
    now = inbound.receiver.copy_of("p0")
    assert now is not None
    assert torch.equal(now, kept), "bit-identical"


async def test_a_revoked_peer_is_out_of_the_trust_list_and_the_acl(
    swarm_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "swarm"
    init_swarm(directory, SwarmPlan(swarm="lab", peers=("p0", "p1", "p2")))
    revoke_peer(directory, "p1")
    key_p1 = load_signing_key(directory / "peers/p1/signing.key")
    inbound = _receiver(directory)
    f = ChocoSender(codec_from_spec("raw"), N, keyframe_interval=1).step(torch.ones(N), seed=0)
    env = Envelope(swarm="lab", sender="p1", round=0, frame=f, model=MODEL)
    signed = sign_envelope(env, key_p1)
    inbound.handle(Message(topic=topic("key", swarm="lab", peer="p1"), payload=signed))
    assert dict(inbound.rejections.counts) == {"unknown_sender": 1}
    broker = Broker(secure=directory, log_dir=tmp_path / "mosquitto")
    broker.launch()
    try:
        async with (
            _client(broker, directory, "p2") as reader,
            _client(broker, directory, "p1") as p1,
            _client(broker, directory, "p0") as p0,
        ):
            await reader.subscribe(["rumor/lab/key/+"])
            await p1.publish("rumor/lab/key/p1", b"revoked", qos=1)
            await p0.publish("rumor/lab/key/p0", b"still here", qos=1)
            got = await _next(reader)
            assert (got.topic, got.payload) == ("rumor/lab/key/p0", b"still here")
    finally:
        broker.stop()


async def test_the_tls_link_sends_without_nagle_delay(tls_broker: Broker, swarm_dir: Path) -> None:
    """Over TLS a chunk leaves as several records; with Nagle on, the last one waited for the
    broker's delayed ACK (20 ms per 124 KiB publish here instead of 2)."""
    async with _client(tls_broker, swarm_dir, "p0") as link:
        client = link._client
        assert client is not None
        sock = client._client.socket()
        assert sock is not None
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
