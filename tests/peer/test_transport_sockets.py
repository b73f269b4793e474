"""TCP options of the transport's socket: no Nagle on ours, no delayed ACK on what we read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from peer.broker import Broker
from peer.transport import sockets
from peer.transport.sockets import ack_at_once, no_delay, quick_ack
from tests.peer.test_transport_mqtt import client, take

linux_only = pytest.mark.skipif(
    not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux only"
)


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    with a, b:
        yield a, b


class FakePaho:
    """paho's two members these helpers use: its socket, and a loop_read that records."""

    def __init__(self, sock: socket.socket | None, *, fail: bool = False) -> None:
        self.sock = sock
        self.reads: list[int] = []
        self.fail = fail

    def socket(self) -> socket.socket | None:
        return self.sock

    def loop_read(self, max_packets: int = 1) -> int:
        self.reads.append(max_packets)
        if self.fail:
            raise ConnectionResetError("gone")
        return 0


def _quickack(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)


@linux_only
def test_every_read_ends_by_acknowledging_at_once(tcp_pair: tuple[socket.socket, ...]) -> None:
    sock = tcp_pair[0]
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)  # delayed ACKs, as Linux
    assert _quickack(sock) == 0  # does in an exchange that goes both ways
    paho = FakePaho(sock)
    ack_at_once(paho)
    assert paho.loop_read(3) == 0
    assert paho.reads == [3]  # the real read ran, with its argument
    assert _quickack(sock) == 1
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    paho.loop_read()
    assert paho.reads == [3, 1]
    assert _quickack(sock) == 1  # re-armed at every read: the option does not stick


@linux_only
def test_a_failed_read_still_acknowledges_and_raises(tcp_pair: tuple[socket.socket, ...]) -> None:
    sock = tcp_pair[0]
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    paho = FakePaho(sock, fail=True)
    ack_at_once(paho)
    with pytest.raises(ConnectionResetError, match="gone"):
        paho.loop_read()
    assert _quickack(sock) == 1


def test_no_socket_or_a_closed_one_is_not_an_error() -> None:
    paho = FakePaho(None)
    ack_at_once(paho)
    paho.loop_read()
    no_delay(paho)
    closed = socket.socket()
    closed.close()
    quick_ack(closed)
    no_delay(FakePaho(closed))


def test_no_delay_turns_nagle_off(tcp_pair: tuple[socket.socket, ...]) -> None:
    sock = tcp_pair[0]
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    no_delay(FakePaho(sock))
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@linux_only
@pytest.mark.broker
async def test_the_transport_acknowledges_what_it_reads_at_once(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Mosquitto's default Nagle, each PUBACK after the first waited for our delayed ACK
    once the last chunk of a frame was out: 35 to 50 ms per 4 MB frame instead of 10 to 15."""
    acked: list[Any] = []
    real = sockets.quick_ack

    def spy(sock: Any) -> None:
        acked.append(sock)
        real(sock)

    monkeypatch.setattr(sockets, "quick_ack", spy)
    async with client(broker, "reader") as reader, client(broker, "writer") as writer:
        await reader.subscribe(["t/x"])
        acked.clear()
        await writer.publish("t/x", bytes(300_000), qos=1)
        [got] = await take(reader, 1)
        assert len(got.payload) == 300_000
        # Both read: the reader its PUBLISH, the writer its PUBACK.
        for link in (reader, writer):
            assert link._client is not None
            assert any(sock is link._client._client.socket() for sock in acked)
