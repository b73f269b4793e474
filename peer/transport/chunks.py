"""Chunking at the transport: big payloads go out in pieces and come back whole.

A payload longer than ``max_payload`` is split with :func:`protocol.chunking.split`, and chunk
``k`` is published on ``{topic}/chunk/{k}`` rather than on ``topic`` itself. Distinct topics are
what make chunked *retained* messages work: a broker retains one message per topic, so chunks
sharing a topic would leave a late subscriber only the last one. Subscribing to a filter also
subscribes to ``{filter}/chunk/+``, and received chunks are reassembled per base topic by a
:class:`protocol.chunking.Reassembler` (which drops incomplete or expired sets), so
``messages()`` only ever yields whole payloads on their base topic. Chunks that arrive on the
base topic itself (a peer that does not use chunk topics) are recognised by their magic byte
and reassembled too.

>>> layer = ChunkLayer(max_payload=None, max_message_bytes=None, stats=TransportStats())
>>> layer.expand_filters(["rumor/lab/key/+", "rumor/#"])
['rumor/#', 'rumor/lab/key/+', 'rumor/lab/key/+/chunk/+']
>>> chunk_base("rumor/lab/key/pi-07/chunk/3")
'rumor/lab/key/pi-07'
>>> chunk_base("rumor/lab/key/pi-07") is None
True
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

from peer.transport.base import Message, TransportStats
from peer.transport.errors import TransportError
from protocol.chunking import Reassembler, is_chunk, split
from protocol.errors import ProtocolError

__all__ = [
    "CHUNK_LEVEL",
    "DEFAULT_MAX_MESSAGE",
    "EVICTED_CHUNK_SET",
    "EXPIRED_CHUNK_SET",
    "ChunkLayer",
    "chunk_base",
    "chunk_topic",
    "packet_room",
]

log = logging.getLogger(__name__)

CHUNK_LEVEL = "chunk"
EXPIRED_CHUNK_SET = "expired_chunk_set"
"""Rejection reason: a partial chunk set dropped at the reassembly timeout."""
EVICTED_CHUNK_SET = "evicted_chunk_set"
"""Rejection reason: a partial chunk set evicted to keep within the reassembly memory budget."""
_ID_BITS = 64
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
# Room for two whole messages in flight, and at least 32 MiB: at the start of a round every
# neighbour's chunked frame may be in flight at once (160 keyframes of a 50k-parameter MLP, 7 of
# a 1M-parameter one), while a flood of chunks can hold no more than this.
_PENDING_FACTOR = 2
_MIN_PENDING = 32 * 1024 * 1024


def chunk_topic(topic: str, index: int) -> str:
    """The topic chunk ``index`` of a message on ``topic`` is published on."""
    return f"{topic}/{CHUNK_LEVEL}/{index}"


MIN_CHUNK_PAYLOAD = 256
"""The smallest chunk (header included) a message is split into, as ``broker.max_payload``'s
lower bound: below it, chunking costs a packet per few bytes."""


def packet_room(topic: str) -> int:
    """The bytes of an MQTT 5 PUBLISH around its payload, for any chunk of a message on
    ``topic``: fixed header (5), topic (2 + its longest chunk topic), packet id (2), properties
    (4; none take 1).

    >>> packet_room("rumor/lab/key/pi-07")
    49
    """
    return 5 + 2 + len(chunk_topic(topic, 2**32 - 1).encode()) + 2 + 4


def chunk_base(topic: str) -> str | None:
    """The base topic if ``topic`` is a chunk topic, else None."""
    base, _, index = topic.rpartition("/")
    parent, _, level = base.rpartition("/")
    if parent and level == CHUNK_LEVEL and index.isdigit():
        return parent
    return None


class ChunkLayer:
    """Splits outgoing payloads and reassembles incoming chunks for one transport."""

    def __init__(
        self,
        *,
        max_payload: int | None,
        max_message_bytes: int | None,
        stats: TransportStats,
        reassembly_timeout_s: float = 30.0,
        max_pending_bytes: int | None = None,
    ) -> None:
        """``max_pending_bytes``: the budget of partial chunk sets; default
        ``max(2 * max_message_bytes, 32 MiB)``."""
        self._max_payload = max_payload
        self._packet_limit: int | None = None
        self._stats = stats
        limit = DEFAULT_MAX_MESSAGE if max_message_bytes is None else max_message_bytes
        self._max_message = limit
        self._reassembler = Reassembler(
            max_pending_bytes=max_pending_bytes or max(_PENDING_FACTOR * limit, _MIN_PENDING),
            max_message_bytes=limit,
            timeout_s=reassembly_timeout_s,
        )
        # A fresh random id per message: chunks retained by an earlier run must not share ids,
        # and no one may predict the next id to spoil a set with a forged chunk sent first.
        self._ids = random.SystemRandom()

    def expand_filters(self, filters: Iterable[str]) -> list[str]:
        """Each filter plus its chunk filter (``#`` already covers chunk topics), sorted."""
        out: set[str] = set()
        for pattern in filters:
            out.add(pattern)
            if not pattern.endswith("#"):
                out.add(chunk_topic(pattern, 0).rpartition("/")[0] + "/+")
        return sorted(out)

    def fit(self, packet_limit: int | None) -> None:
        """Keep every packet within ``packet_limit`` bytes (the broker's Maximum Packet Size,
        from its CONNACK; None: it said none): chunks get smaller than ``max_payload`` where
        they must, never larger."""
        self._packet_limit = packet_limit

    def payload_limit(self, topic: str) -> int | None:
        """The largest payload published in one packet on ``topic`` (None: no limit)."""
        limit = self._max_payload
        if self._packet_limit is not None:
            fits = max(0, self._packet_limit - packet_room(topic))
            limit = fits if limit is None else min(limit, fits)
        return limit

    def outgoing(self, topic: str, payload: bytes) -> list[tuple[str, bytes]]:
        """(topic, bytes) pairs to publish for ``payload``: itself, or its chunks.

        TransportError if it must be chunked but the broker's packet limit leaves less than
        :data:`MIN_CHUNK_PAYLOAD` bytes a chunk: a 4 MB frame would become millions of packets.
        """
        limit = self.payload_limit(topic)
        if limit is None or len(payload) <= limit:
            return [(topic, payload)]
        if limit < MIN_CHUNK_PAYLOAD and limit != self._max_payload:  # the broker's doing
            raise TransportError(
                f"the broker takes packets of at most {self._packet_limit} bytes, which leaves "
                f"{limit} bytes for a chunk on {topic!r} (at least {MIN_CHUNK_PAYLOAD} needed): "
                "raise the broker's max_packet_size"
            )
        message_id = self._ids.getrandbits(_ID_BITS)
        parts = split(payload, max_payload=limit, message_id=message_id)
        return [(chunk_topic(topic, k), part) for k, part in enumerate(parts)]

    def incoming(self, topic: str, payload: bytes, *, retained: bool) -> Message | None:
        """The whole message ``payload`` completes, if any; bad chunks are counted and dropped."""
        self._stats.bytes_in += len(payload)
        base = chunk_base(topic)
        if base is None:
            if not is_chunk(payload):
                if self._reassembler.expire():  # stale sets go at every packet, not only chunks
                    self._count_dropped_sets()
                if len(payload) > self._max_message:
                    # Dropped here, before it takes a place in the inbox.
                    self._stats.rejected["oversized_message"] += 1
                    return None
                return Message(topic=topic, payload=payload, retained=retained)
            base = topic
        try:
            whole = self._reassembler.feed(base, payload)
        except ProtocolError as exc:
            self._stats.rejected[exc.reason] += 1
            log.debug("dropped a chunk on %s: %s", topic, exc)
            return None
        finally:
            self._count_dropped_sets()
        if whole is None:
            return None
        return Message(topic=base, payload=whole, retained=retained)

    def _count_dropped_sets(self) -> None:
        """Partial sets the reassembler dropped (timed out, or evicted to stay within the memory
        budget) count as rejections too, with the transport's other reasons."""
        dropped = (
            (EXPIRED_CHUNK_SET, self._reassembler.expired),
            (EVICTED_CHUNK_SET, self._reassembler.evicted),
        )
        for reason, count in dropped:
            if count:
                self._stats.rejected[reason] = count
