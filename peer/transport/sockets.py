"""TCP options on the transport's socket: nothing we send or acknowledge waits for a timer.

Two timers of TCP can hold a message back on a fast link:

- Nagle's algorithm on *our* side holds a small segment while earlier data is unacknowledged.
  Over TLS a chunk leaves as several records, and the last one waited for the broker's delayed
  ACK: a 124 KiB publish took 20 ms instead of 2. :func:`no_delay` turns it off.
- Nagle's algorithm on the *broker's* side (Mosquitto's default, ``set_tcp_nodelay false``)
  holds each small packet it sends us, a PUBACK above all, until we acknowledge the one before.
  While we send, our data carries that acknowledgement at once; once the last chunk of a frame
  is out and we only wait for PUBACKs, Linux delays our ACK by 40 ms or more, and the rest of the
  PUBACKs wait with it: a 4 MB frame in 33 chunks took 35 to 50 ms to publish on an idle
  2-core machine instead of 10 to 15 when the other peer happened to be sending too (its
  chunks' acknowledgements carried ours). :func:`ack_at_once` re-arms ``TCP_QUICKACK`` after
  every read, which sends the pending ACK right away (the option does not stick: the kernel
  returns to delayed ACKs by itself). Linux only; elsewhere it does nothing.

paho has no public hook on its socket or its reads: these take the paho client (a
:class:`PahoLike`) that aiomqtt wraps.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Protocol

__all__ = ["PahoLike", "ack_at_once", "no_delay", "quick_ack"]

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class PahoLike(Protocol):
    """What these helpers use of ``paho.mqtt.client.Client``."""

    def socket(self) -> Any: ...

    def loop_read(self, max_packets: int = 1) -> Any: ...


def no_delay(paho: PahoLike) -> None:
    """Turn Nagle's algorithm off on ``paho``'s socket (if it has one yet)."""
    sock = paho.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def quick_ack(sock: Any) -> None:
    """Acknowledge what ``sock`` has received now, not at the delayed-ACK timer (Linux)."""
    if _QUICKACK is not None and sock is not None:
        with contextlib.suppress(OSError, ValueError):  # closed meanwhile: nothing to ACK
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


def ack_at_once(paho: PahoLike) -> None:
    """Make every ``loop_read`` of ``paho`` (what aiomqtt calls when the socket is readable)
    end with :func:`quick_ack`. Install once per client, before it connects."""
    if _QUICKACK is None:
        return
    read = paho.loop_read

    def loop_read(max_packets: int = 1) -> Any:
        try:
            return read(max_packets)
        finally:
            quick_ack(paho.socket())

    # An instance attribute: aiomqtt's reader callback looks ``loop_read`` up at each call.
    paho.loop_read = loop_read  # type: ignore[method-assign]
