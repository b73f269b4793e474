"""Chunking: envelopes larger than the broker's packet limit travel as several chunks.

Every chunk is a 22-byte little-endian header followed by a slice of the envelope::

    offset  size  field
    0       1     magic 0xC1
    1       1     chunk format version, 1
    2       8     message id (uint64), chosen by the sender, unique among its pending messages
    10      4     index (uint32), 0 <= index < count
    14      4     count (uint32), number of chunks, >= 1
    18      4     total (uint32), length of the whole envelope in bytes
    22      ...   body: envelope[index * L : index * L + L], L the same for every chunk but the last

0xC1 is the one byte msgpack never uses, so a chunk cannot be mistaken for an envelope (which
starts with a msgpack map byte) on the same topic: :func:`is_chunk` looks at the first byte.

>>> chunks = split(b"hello world", max_payload=26, message_id=7)
>>> [len(c) for c in chunks]
[26, 26, 25]
>>> r = Reassembler(max_pending_bytes=4096, timeout_s=10.0)
>>> [r.feed("pi-07", c) for c in reversed(chunks)]
[None, None, b'hello world']
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from protocol.errors import BadChunk, ConfigError
from protocol.types import PeerId

__all__ = [
    "CHUNK_MAGIC",
    "CHUNK_OVERHEAD",
    "HEADER_SIZE",
    "MQTT_MAX_PACKET",
    "Reassembler",
    "is_chunk",
    "packets",
    "split",
]

_log = logging.getLogger(__name__)

CHUNK_MAGIC: Final = 0xC1
_VERSION: Final = 1
_HEADER: Final = struct.Struct("<BBQIII")
HEADER_SIZE: Final = _HEADER.size
_MAX_U32: Final = 2**32 - 1
_MAX_U64: Final = 2**64 - 1
MQTT_MAX_PACKET: Final = 268_435_455
"""The largest packet MQTT can frame (a 4-byte remaining length): the top of every packet or
payload size rumor accepts."""
CHUNK_OVERHEAD: Final = 64
"""Bookkeeping bytes charged per buffered chunk, so floods of tiny chunks stay within the bound."""


def is_chunk(packet: bytes) -> bool:
    """True if ``packet`` starts with the chunk magic (an envelope never does).

    >>> is_chunk(bytes([0xC1, 1])), is_chunk(bytes([0x8C]))
    (True, False)
    """
    return len(packet) > 0 and packet[0] == CHUNK_MAGIC


def _check_args(max_payload: int, message_id: int) -> None:
    if isinstance(max_payload, bool) or not isinstance(max_payload, int):
        raise ConfigError(f"max_payload {max_payload!r} is invalid; expected an int")
    if max_payload <= HEADER_SIZE:
        raise ConfigError(f"max_payload {max_payload} is too small; expected > {HEADER_SIZE}")
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise ConfigError(f"message_id {message_id!r} is invalid; expected an int")
    if not 0 <= message_id <= _MAX_U64:
        raise ConfigError(f"message_id {message_id} is out of range; expected 0 to 2**64 - 1")


def split(data: bytes, *, max_payload: int, message_id: int) -> list[bytes]:
    """Cut ``data`` into chunks of at most ``max_payload`` bytes each, headers included."""
    _check_args(max_payload, message_id)
    total = len(data)
    if total > _MAX_U32:
        raise ConfigError(f"message of {total} bytes is too long; expected at most {_MAX_U32}")
    body = max_payload - HEADER_SIZE
    count = max(1, -(-total // body))
    view = memoryview(data)
    return [
        _HEADER.pack(CHUNK_MAGIC, _VERSION, message_id, i, count, total)
        + view[i * body : (i + 1) * body]
        for i in range(count)
    ]


def packets(data: bytes, *, max_payload: int, message_id: int) -> list[bytes]:
    """What to publish: ``[data]`` when it fits in ``max_payload``, else its chunks."""
    _check_args(max_payload, message_id)
    if len(data) <= max_payload:
        return [data]
    return split(data, max_payload=max_payload, message_id=message_id)


@dataclass
class _Pending:
    count: int
    total: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    """Body bytes buffered."""
    cost: int = 0
    """Bytes charged against the bound: bodies plus CHUNK_OVERHEAD per chunk."""


def _parse(chunk: bytes) -> tuple[int, int, int, int, bytes]:
    if len(chunk) < HEADER_SIZE:
        raise BadChunk(
            f"chunk of {len(chunk)} bytes; expected at least a {HEADER_SIZE}-byte header"
        )
    magic, version, message_id, index, count, total = _HEADER.unpack_from(chunk)
    if magic != CHUNK_MAGIC or version != _VERSION:
        raise BadChunk(
            f"chunk header starts {chunk[:2].hex()}; expected magic c1 and version {_VERSION:02x}"
        )
    body = bytes(chunk[HEADER_SIZE:])
    if not 1 <= count <= max(total, 1):
        raise BadChunk(f"chunk count {count} for {total} bytes; expected 1 to max(total, 1)")
    if index >= count:
        raise BadChunk(f"chunk index {index}; expected below count {count}")
    if len(body) > total:
        raise BadChunk(f"chunk body of {len(body)} bytes; expected at most total {total}")
    return message_id, index, count, total, body


def _check_layout(parts: dict[int, bytes], count: int, total: int) -> None:
    # Every chunk but the last carries the same length L, and the last 1 to L bytes, as split()
    # does: with the sum checked against total, count is then ceil(total / L).
    first = len(parts[0])
    for index in range(count):
        size = len(parts[index])
        if size != first and not (index == count - 1 and size <= first):
            raise BadChunk(
                f"chunk {index} of {count} carries {size} bytes; expected {first}"
                + (" or fewer (last chunk)" if index == count - 1 else "")
            )
    if total and not parts[count - 1]:
        raise BadChunk(f"chunk {count - 1} of {count} is empty; expected 1 to {first} bytes")


class Reassembler:
    """Buffers chunk sets per (sender, message id) until complete, within a hard memory bound.

    ``feed`` returns the whole envelope once its last missing chunk arrives, and passes a packet
    that is not a chunk through unchanged, so one call handles everything a topic delivers.
    Partial sets older than ``timeout_s`` (measured from their first chunk, by ``clock``, which
    must be monotonic) are dropped on every feed; when buffering a chunk would exceed
    ``max_pending_bytes``, the oldest other sets are evicted. Each buffered chunk is charged its
    body plus ``CHUNK_OVERHEAD`` bytes. ``expired`` and ``evicted`` count the sets dropped.
    """

    def __init__(
        self,
        *,
        max_pending_bytes: int,
        timeout_s: float,
        max_message_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limit = max_pending_bytes if max_message_bytes is None else max_message_bytes
        for name, value in (("max_pending_bytes", max_pending_bytes), ("max_message_bytes", limit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} {value!r} is invalid; expected a positive int")
        if not 0 < timeout_s < float("inf"):
            raise ConfigError(f"timeout_s {timeout_s!r} is invalid; expected a positive number")
        self._max_pending = max_pending_bytes
        self._max_message = limit
        self._timeout = float(timeout_s)
        self._clock = clock
        self._pending: dict[tuple[PeerId, int], _Pending] = {}
        self.pending_bytes = 0
        self.expired = 0
        self.evicted = 0

    @property
    def pending_sets(self) -> int:
        return len(self._pending)

    def expire(self) -> int:
        """Drop partial sets older than ``timeout_s``; return how many were dropped.

        Sets are kept in the order their first chunk came, so only the stale ones at the front
        are looked at: a chunk costs O(1) however many sets are pending.
        """
        now, dropped = self._clock(), 0
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if now - oldest.started <= self._timeout:
                break
            self._drop(key)
            dropped += 1
        self.expired += dropped
        return dropped

    def _drop(self, key: tuple[PeerId, int]) -> None:
        pending = self._pending.pop(key)
        self.pending_bytes -= pending.cost

    def _make_room(self, key: tuple[PeerId, int], cost: int) -> None:
        # _pending_for refused sets whose full cost exceeds the bound, so evicting the other sets
        # always makes enough room.
        while self.pending_bytes + cost > self._max_pending:
            oldest = next(k for k in self._pending if k != key)
            self._drop(oldest)
            self.evicted += 1
            _log.debug("evicted chunk set %d of %r to stay within the bound", oldest[1], oldest[0])

    def _pending_for(self, key: tuple[PeerId, int], count: int, total: int) -> _Pending:
        pending = self._pending.get(key)
        if pending is None:
            full_cost = total + count * CHUNK_OVERHEAD
            if full_cost > self._max_pending:
                raise BadChunk(
                    f"chunk set {key[1]} of {key[0]!r} needs {full_cost} buffered bytes; "
                    f"max_pending_bytes is {self._max_pending}"
                )
            pending = self._pending[key] = _Pending(count, total, self._clock())
        elif (count, total) != (pending.count, pending.total):
            # The chunk that disagrees is refused, not the set: a late forged chunk with a
            # seen id cannot spoil the real one.
            raise BadChunk(
                f"chunk of set {key[1]} says count {count}, total {total}; expected count "
                f"{pending.count}, total {pending.total} as its first chunk said"
            )
        return pending

    def feed(self, sender: PeerId, packet: bytes) -> bytes | None:
        """Take one packet from ``sender``'s topic; return a whole envelope or None (not yet)."""
        self.expire()
        if not is_chunk(packet):
            return bytes(packet)
        message_id, index, count, total, body = _parse(packet)
        if total > self._max_message:
            raise BadChunk(f"chunk set of {total} bytes; the limit is {self._max_message}")
        key = (sender, message_id)
        pending = self._pending_for(key, count, total)
        old = pending.parts.get(index)
        if old is not None:
            if old != body:
                raise BadChunk(f"chunk {index} of set {message_id} repeated with different bytes")
            return None  # an MQTT QoS 1 duplicate
        if pending.size + len(body) > total:
            self._drop(key)
            raise BadChunk(f"chunk set {message_id} carries more than its total of {total} bytes")
        cost = len(body) + CHUNK_OVERHEAD
        self._make_room(key, cost)
        pending.parts[index] = body
        pending.size += len(body)
        pending.cost += cost
        self.pending_bytes += cost
        if len(pending.parts) < count:
            return None
        self._drop(key)
        _check_layout(pending.parts, count, total)
        if pending.size != total:
            raise BadChunk(f"chunk set {message_id} holds {pending.size} bytes; expected {total}")
        return b"".join(pending.parts[i] for i in range(count))
