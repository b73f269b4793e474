"""The MQTT transport, on aiomqtt: reconnects by itself, announces presence, chunks big payloads.

aiomqtt does not reconnect; this transport owns the loop: connect, subscribe to the whole desired
set, publish a retained ``online``, pump messages; on loss, wait a fully jittered exponential
backoff (``settings.backoff``, seeded ``rng``) and start over. Training never waits for it:
``publish`` while the link is down raises :class:`NotConnectedError` at once.

aiomqtt and paho are imported here and nowhere else; their exceptions become
:class:`~peer.transport.errors.TransportError` where they surface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from peer.transport.base import Presence
from peer.transport.chunks import DEFAULT_MAX_MESSAGE, chunk_base
from peer.transport.core import TransportCore
from peer.transport.errors import NotConnectedError, TransportError
from peer.transport.filters import check_filter, check_topic
from peer.transport.pipeline import WINDOW, send_window
from peer.transport.ratelimit import RateLimit
from peer.transport.settings import MqttSettings
from peer.transport.sockets import ack_at_once, no_delay
from protocol.chunking import MQTT_MAX_PACKET

__all__ = ["MqttTransport"]

log = logging.getLogger(__name__)

_SUBSCRIBE_QOS = 1
_PROTOCOLS = {"3.1.1": aiomqtt.ProtocolVersion.V311, "5": aiomqtt.ProtocolVersion.V5}


PACKET_ROOM = 70_000
"""What surrounds a payload in a PUBLISH packet at most: fixed header, a topic of up to 65,535
bytes, packet id and properties."""


def connect_properties(settings: MqttSettings) -> Properties | None:
    """MQTT 5: the CONNECT's Maximum Packet Size, the largest message this client accepts
    (``max_message_bytes``) plus :data:`PACKET_ROOM`. The broker then drops a longer message
    for this client instead of sending it: without it a hostile publisher's message (up to
    Mosquitto's 256 MB) was read whole into memory before any check could refuse it. MQTT 3.1.1
    has no such property.

    >>> s = MqttSettings(client_id="a", host="h", max_message_bytes=1024)
    >>> connect_properties(s).MaximumPacketSize
    71024
    >>> s = MqttSettings(client_id="a", host="h", max_message_bytes=2**30)
    >>> connect_properties(s).MaximumPacketSize == MQTT_MAX_PACKET
    True
    """
    if settings.protocol != "5":
        return None
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: untyped
    limit = settings.max_message_bytes
    wanted = (DEFAULT_MAX_MESSAGE if limit is None else limit) + PACKET_ROOM
    properties.MaximumPacketSize = min(wanted, MQTT_MAX_PACKET)
    return properties


class MqttTransport(TransportCore):
    """A :class:`~peer.transport.base.Transport` over a real MQTT broker."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        presence: Presence | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            task_name=f"mqtt-{settings.client_id}",
            presence=presence,
            max_payload=settings.max_payload,
            max_message_bytes=settings.max_message_bytes,
            max_queued=settings.max_queued,
        )
        self._settings = settings
        self._rng = rng if rng is not None else random.Random()
        self._client: aiomqtt.Client | None = None
        self._packet_limit: int | None = None
        # aiomqtt warns once per message it drops from a full queue: one line per interval.
        self._client_log = logging.getLogger(f"rumor.mqtt.{settings.client_id}")
        if not any(isinstance(f, RateLimit) for f in self._client_log.filters):
            self._client_log.addFilter(RateLimit())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, announce = self._client, self._announce
        if client is not None and self._state.is_up and self._presence and announce:
            # A clean close says so; the will is only for a peer that vanishes.
            with contextlib.suppress(TransportError):
                await self._send(client, [(self._presence.topic, announce[1])], 1, True)
        await self._close()  # the client's own exit sends DISCONNECT: no will

    def _new_client(self) -> aiomqtt.Client:
        s = self._settings
        will = None
        announce = self._new_announcement()
        if self._presence is not None and announce is not None:
            will = aiomqtt.Will(self._presence.topic, announce[1], qos=1, retain=True)
        tls = None
        if s.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=None if s.tls_ca is None else str(s.tls_ca),
                certfile=None if s.tls_cert is None else str(s.tls_cert),
                keyfile=None if s.tls_key is None else str(s.tls_key),
            )
        client = aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id,
            username=s.username,
            password=s.password,
            protocol=_PROTOCOLS[s.protocol],
            will=will,
            keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
            tls_params=tls,
            max_queued_incoming_messages=s.max_queued,
            properties=connect_properties(s),
            logger=self._client_log,
        )
        # aiomqtt warns above 10 unacknowledged publishes; a chunked frame keeps WINDOW.
        client.pending_calls_threshold = 2 * WINDOW
        ack_at_once(client._client)  # aiomqtt has no public handle on paho's client
        self._hear_connack(client)
        return client

    def _hear_connack(self, client: aiomqtt.Client) -> None:
        """Keep the broker's Maximum Packet Size from its CONNACK (MQTT 5; aiomqtt drops the
        CONNACK's properties), for :meth:`_serve` to fit the chunks to it."""
        paho = client._client
        on_connect = paho.on_connect

        def hear(*args: Any) -> None:
            properties = args[4] if len(args) > 4 else None
            limit = getattr(properties, "MaximumPacketSize", None)
            self._packet_limit = limit if isinstance(limit, int) and limit > 0 else None
            if on_connect is not None:
                on_connect(*args)

        paho.on_connect = hear

    async def _run(self) -> None:
        attempt = 0
        while True:
            reason = "connection ended"
            try:
                client = await self._connect()
                try:
                    attempt = 0
                    await self._serve(client)
                finally:
                    await client.__aexit__(None, None, None)
            except (aiomqtt.MqttError, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            finally:
                self._client = None
            self._state.set_down(reason)
            delay = self._settings.backoff.delay(attempt, self._rng)
            attempt += 1
            log.warning(
                "broker %s:%d unreachable (%s); retry %d in %.2f s",
                self._settings.host,
                self._settings.port,
                reason,
                attempt,
                delay,
            )
            await asyncio.sleep(delay)

    async def _connect(self) -> aiomqtt.Client:
        """One connect attempt, bounded by ``connect_timeout_s`` as a whole.

        aiomqtt bounds only the wait for CONNACK; the TCP connect before it runs in a thread
        under paho's own timeout, and a socket the broker resets before CONNACK (a broker
        shutting down) ends nothing: the attempt could hang for both timeouts together.
        """
        client = self._new_client()
        timeout = self._settings.connect_timeout_s
        # paho's TCP connect runs in aiomqtt's thread, beyond the reach of a cancel: bound it
        # too, later than the attempt, so that an abandoned thread ends soon after.
        client._client.connect_timeout = 2 * timeout
        try:
            async with asyncio.timeout(timeout):
                await client.__aenter__()
        except TimeoutError as exc:
            _abandon(client)
            raise aiomqtt.MqttError(f"no CONNACK within connect_timeout_s={timeout:g}") from exc
        except BaseException:
            _abandon(client)
            raise
        return client

    async def _serve(self, client: aiomqtt.Client) -> None:
        """One connection's life: subscribe, announce, pump until the link drops."""
        self._client = client
        no_delay(client._client)
        self._chunks.fit(self._packet_limit)
        if self._packet_limit is not None:
            log.info("the broker takes packets of up to %d bytes", self._packet_limit)
        self._stats.connects += 1
        filters = self._chunks.expand_filters(self._filters)
        if filters:
            await client.subscribe([(f, _SUBSCRIBE_QOS) for f in filters])
        if self._presence is not None and self._announce is not None:
            await client.publish(self._presence.topic, self._announce[0], qos=1, retain=True)
        self._state.set_up()
        log.info("connected to %s:%d", self._settings.host, self._settings.port)
        async for raw in client.messages:
            self._deliver(str(raw.topic), bytes(raw.payload), retained=bool(raw.retain))

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish ``payload`` (chunked if over ``max_payload``, the chunks pipelined: see
        :mod:`peer.transport.pipeline`); NotConnectedError while down."""
        check_topic(topic)
        client = self._client
        if client is None or not self._state.is_up:
            raise NotConnectedError(f"not connected to the broker; dropped a publish on {topic}")
        parts = self._chunks.outgoing(topic, payload)
        await self._send(client, parts, qos, retain)
        self._stats.bytes_out += sum(len(part) for _, part in parts)
        self._stats.messages_out += 1

    async def _send(
        self,
        client: aiomqtt.Client,
        parts: Sequence[tuple[str, bytes]],
        qos: int,
        retain: bool,
    ) -> None:
        """Publish ``parts`` in order (a window of them in flight), giving up as soon as the
        link drops, not at the timeout."""
        timeout = self._settings.publish_timeout_s

        async def one(part_topic: str, part: bytes) -> None:
            await client.publish(part_topic, part, qos=qos, retain=retain, timeout=timeout)

        topic = chunk_base(parts[0][0]) or parts[0][0]
        publish = asyncio.ensure_future(send_window(one, parts))
        lost = asyncio.ensure_future(self._state.wait_down())
        try:
            await asyncio.wait({publish, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (publish, lost):
                future.cancel()
        if not publish.done() or publish.cancelled():
            raise NotConnectedError(f"link lost while publishing on {topic}")
        exc = publish.exception()
        if exc is not None:
            raise TransportError(f"publish on {topic} failed: {exc}") from exc

    async def subscribe(self, topics: Iterable[str]) -> None:
        new = {check_filter(t) for t in topics} - self._filters
        self._filters |= new
        await self._apply(new, subscribe=True)

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        gone = self._filters & set(topics)
        self._filters -= gone
        await self._apply(gone, subscribe=False)

    async def _apply(self, filters: set[str], *, subscribe: bool) -> None:
        client = self._client
        if not filters or client is None or not self._state.is_up:
            return  # recorded; the next connection applies the whole set
        expanded = self._chunks.expand_filters(filters)
        try:
            if subscribe:
                await client.subscribe([(f, _SUBSCRIBE_QOS) for f in expanded])
            else:
                await client.unsubscribe(expanded)
        except aiomqtt.MqttError as exc:
            # The link is going down; the reconnect re-applies the desired set.
            log.warning("(un)subscribe %s deferred to the next connection: %s", expanded, exc)


def _abandon(client: aiomqtt.Client) -> None:
    """Tear down a client whose connect failed or was cut short, so that no half-open socket
    (nor a late CONNACK under our client id) outlives the attempt.

    The TCP connect may still be running in aiomqtt's executor thread: whichever comes first,
    the socket it opens or this call, disconnects. paho closes the socket once its DISCONNECT
    is written or the write fails.
    """
    paho_client = client._client  # aiomqtt has no public way to abort a connect

    def close_on_open(*_: object) -> None:
        paho_client.disconnect()

    paho_client.on_socket_open = close_on_open
    if paho_client.socket() is not None:
        paho_client.disconnect()
