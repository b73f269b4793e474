"""The receiving side of a peer: every message from the broker goes through here.

Frames go through :func:`protocol.validation.accept` (the one entry point for received bytes);
a rejected message is counted per reason, logged rate-limited, and dropped: nothing a remote
party sends can raise out of :meth:`Inbound.handle` or change a model. Accepted frames leave a
snapshot of the sender's public copy under the round it was sent in, so that a sync round mixes
the copies *of that round* even when a fast neighbour's next frame has already arrived. A sync
frame of a round already mixed still updates the sender's copy (its deltas are cumulative); one
round late, it stands in for the sender's frame of the current round if that does not come in
time; otherwise it is counted in :attr:`Inbound.ignored` as ``stale_round``, not mixed. The
broker re-delivers a sender's retained keyframe on every re-subscription (after a reconnect):
the very bytes of the last keyframe accepted from that sender are a ``duplicate`` in
:attr:`Inbound.ignored`, not a replay; any other frame not newer than the last is still one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from blake3 import blake3

from peer.runtime.liveness import Liveness
from peer.runtime.rejections import Rejections
from peer.transport import Message
from protocol.choco import ChocoReceiver
from protocol.envelope import Envelope
from protocol.errors import ProtocolError, ReplayedMessage, UnknownSender
from protocol.presence import PresenceState, decode_presence
from protocol.topics import parse_topic
from protocol.types import PeerId, Vector
from protocol.validation import Expectations, accept

__all__ = ["Inbound"]

log = logging.getLogger(__name__)

MAX_SNAPSHOTS_PER_SENDER = 16
"""A sender's round numbers are its own claim: however many it sends, we keep its newest few."""
RESYNC_AFTER_REPLAYS = 3
"""Without signatures, this many keyframes in a row refused as replays make the receiver start
that sender afresh: one forged frame with a huge seq cannot silence a sender for good."""
MAX_PEERS_TRACKED = 4096
"""Peers whose presence is tracked at most: without signatures anyone can invent ids."""


class Inbound:
    """Validates and applies received frames; tracks presence; keeps per-round copy snapshots."""

    def __init__(
        self,
        *,
        me: PeerId,
        prefix: str,
        expected: Expectations,
        receiver: ChocoReceiver,
        liveness: Liveness,
        rejections: Rejections,
        ignored: Rejections | None = None,
    ) -> None:
        self.me = me
        self.prefix = prefix
        self.expected = expected
        """Replaced by the runtime when the neighbourhood changes."""
        self.receiver = receiver
        self.liveness = liveness
        self.rejections = rejections
        self.ignored = ignored or Rejections(what="left out of the mix a frame", level=logging.INFO)
        """Valid frames applied to the sender's copy but not mixed, by reason (``stale_round``)."""
        self.sync_floor: int | None = None
        """Sync mode: the round being received; a frame of an earlier round comes too late to be
        mixed (that round is over). None in async mode, where staleness decides."""
        self.changed = asyncio.Event()
        """Set whenever a frame is accepted or a presence changes; the sync barrier clears it."""
        self.decode_s = 0.0
        """Seconds spent validating and applying frames, since the runtime last reset it."""
        self.joined = False
        """A peer came (back) online: it holds none of our frames, so send it a keyframe soon
        rather than leave it waiting for the periodic one. The runtime clears it."""
        self.excused: dict[PeerId, int] = {}
        """Per sender, the newest round whose frame the barrier need not wait for (it was lost
        on purpose by a fault plan, :mod:`peer.faults`); empty otherwise."""
        self._copies: dict[PeerId, dict[int, Vector]] = {}
        self._presence_seen: dict[PeerId, PresenceState] = {}
        self._replayed_keys: dict[PeerId, int] = {}
        self._last_key: dict[PeerId, bytes] = {}
        """Per sender (an expected in-neighbour: one entry each), the digest of the last
        keyframe accepted from it, which the broker re-delivers on every re-subscription."""
        self._late: dict[PeerId, tuple[int, Vector]] = {}
        """Sync mode: per sender, its frame of the round before ``sync_floor`` that came after
        that round was mixed (see :meth:`copy_for`)."""

    def handle(self, message: Message) -> None:
        """Process one message; never raises for anything a remote party can send."""
        start = time.perf_counter()
        try:
            self._handle(message)
        except ProtocolError as exc:
            self.rejections.record(_topic_peer(message.topic), exc.reason, str(exc))
        except Exception as exc:  # hostile input must never take the daemon down
            # Rate-limited like any rejection: a message that trips a bug can be sent in a loop.
            if self.rejections.record(_topic_peer(message.topic), "internal_error", repr(exc)):
                log.error("the traceback of that internal_error", exc_info=exc)
        finally:
            self.decode_s += time.perf_counter() - start

    def _handle(self, message: Message) -> None:
        kind, swarm, peer = parse_topic(message.topic, prefix=self.prefix)
        if swarm != self.expected.swarm or peer == self.me or kind == "telemetry":
            return
        if kind == "presence":
            self._presence(peer, message.payload)
            return
        # A rejected frame raises here and changes nothing: not the copies, not liveness, not
        # whom the barrier waits for. Anyone can publish on a peer's topic, so a frame that
        # failed a check proves nothing about its sender (a forged delta must not silence it).
        accepted = self._accept(kind, peer, message.payload)
        if accepted is None:  # a duplicate: nothing new, and proof of nothing (anyone can resend)
            return
        env, copy = accepted
        self.liveness.heard(peer)
        self.changed.set()
        if self.sync_floor is not None and env.round < self.sync_floor:
            if env.round == self.sync_floor - 1:
                # One round late (its sender lags by about a round timeout): it stands in for
                # the sender's frame of this round if none comes in time, so that two peers
                # whose rounds lock in step, each frame just after the other's timeout, still
                # mix. prune() counts it as stale_round if it was not needed.
                self._late[peer] = (env.round, copy)
                return
            self._stale(peer, env.round)
            return
        held = self._copies.setdefault(peer, {})
        # A newer frame of an earlier round proves the later-round snapshots wrong (a forged
        # round, or a sender resumed from a checkpoint): they must not stand for it any more.
        for later in [r for r in held if r > env.round]:
            del held[later]
        held[env.round] = copy
        while len(held) > MAX_SNAPSHOTS_PER_SENDER:
            del held[min(held)]

    def _accept(self, kind: str, peer: PeerId, payload: bytes) -> tuple[Envelope, Vector] | None:
        """:func:`accept`, and for an unverified sender the way out of a forged huge seq; None
        for a duplicate of the last keyframe accepted from ``peer`` (counted in ``ignored``)."""
        try:
            result = accept(payload, self.expected, self.receiver, via=peer)
        except ReplayedMessage:
            last_key = self._last_key.get(peer)
            if last_key is not None and _digest(payload) == last_key:
                # The frame the receiver applied last time these bytes came: no replay.
                self.ignored.counts["duplicate"] += 1  # not logged: benign, and anyone's to send
                return None
            if kind != "key" or self.expected.trust is not None:
                raise  # a signed replay is a real replay
            count = self._replayed_keys[peer] = self._replayed_keys.get(peer, 0) + 1
            if count < RESYNC_AFTER_REPLAYS:
                raise
            log.warning(
                "%s: %d keyframes in a row from %s refused as replays; starting it afresh "
                "(it restarted, or someone forged a huge seq in its name)",
                self.me,
                count,
                peer,
            )
            self.forget(peer)
            result = accept(payload, self.expected, self.receiver, via=peer)
        self._replayed_keys.pop(peer, None)
        if result[0].frame.kind == "key":
            self._last_key[peer] = _digest(payload)
        return result

    def _presence(self, peer: PeerId, payload: bytes) -> None:
        trust = self.expected.trust
        state = decode_presence(payload, swarm=self.expected.swarm, peer=peer, trust=trust)
        if peer not in self._presence_seen and len(self._presence_seen) >= MAX_PEERS_TRACKED:
            raise UnknownSender(
                f"presence of {peer!r}: already tracking {MAX_PEERS_TRACKED} peers; ignored"
            )
        last = self._presence_seen.get(peer)
        if state.epoch is not None and state == last:
            # The same presence again: a re-subscription re-delivers the retained one. It still
            # confirms the presence on this connection (Liveness.reconnected).
            self.liveness.presence(peer, online=state.online, paused=state.paused)
            return
        if not state.after(last):
            raise ReplayedMessage(
                f"presence of {peer!r} from epoch {state.epoch}, not newer than the last believed"
            )
        self._presence_seen[peer] = state
        online = state.online
        if online and peer not in self.liveness.announced():
            self.joined = True
            if last is not None and last.online:
                # Believed online, then not confirmed after a reconnect of ours: as after an
                # offline, what comes back is a new incarnation.
                self.receiver.forget(peer)
        if not online:
            # Whatever comes back under this name is a new incarnation (restarted, maybe
            # without its checkpoint): its deltas must not land on the old one's copy. The
            # snapshots already taken stay: they are its frames of rounds it did send (a
            # peer that finishes says offline right after its last frame).
            self.receiver.forget(peer)
        self.liveness.presence(peer, online=online, paused=state.paused)
        self.changed.set()

    def keep_newest(self) -> None:
        """Forget every snapshot but each sender's newest (a paused peer mixes none, and must
        not hold up to :data:`MAX_SNAPSHOTS_PER_SENDER` copies per neighbour for hours)."""
        for held in self._copies.values():
            newest = max(held, default=None)
            for r in [r for r in held if r != newest]:
                del held[r]
        self._late.clear()

    def newest_round(self, peer: PeerId) -> int | None:
        """The round of the newest copy held from ``peer``, if any."""
        return max(self._copies.get(peer, ()), default=None)

    def has_round(self, peer: PeerId, round: int) -> bool:
        """Whether a copy sent in ``round`` or later has arrived from ``peer``."""
        return any(r >= round for r in self._copies.get(peer, ()))

    def waiting_for(self, live: frozenset[PeerId], round: int) -> list[PeerId]:
        """The live peers whose copy of ``round`` (or later) has not arrived, sorted."""
        return sorted(
            p for p in live if not self.has_round(p, round) and self.excused.get(p, -1) < round
        )

    def copy_for(self, peer: PeerId, round: int, *, staleness: int | None) -> Vector | None:
        """The copy of ``peer`` to mix in ``round``.

        Sync (``staleness`` None): the copy sent in ``round``, else the earliest newer one, else
        the one sent in ``round - 1`` if it arrived after that round was mixed (never mixed yet).
        Async: the newest copy, if sent no earlier than ``round - staleness``.
        """
        held = self._copies.get(peer, {})
        if staleness is None:
            if round in held:
                return held[round]
            newer = [r for r in held if r > round]
            if newer:
                return held[min(newer)]
            late = self._late.get(peer)
            return late[1] if late is not None and late[0] == round - 1 else None
        if not held:
            return None
        newest = max(held)
        return held[newest] if newest >= round - staleness else None

    def prune(self, round: int) -> None:
        """Forget snapshots older than ``round``, keeping each sender's newest; in sync mode,
        frames of rounds before ``round`` arrive too late from now on."""
        if self.sync_floor is not None:
            for peer, (late_round, _) in self._late.items():
                if self.has_round(peer, late_round + 1):  # its on-time frame was mixed instead
                    self._stale(peer, late_round)
            self._late.clear()
            self.sync_floor = round
        for held in self._copies.values():
            newest = max(held, default=None)
            for r in [r for r in held if r < round and r != newest]:
                del held[r]

    def _stale(self, peer: PeerId, round: int) -> None:
        assert self.sync_floor is not None
        detail = f"its round {round} came after round {self.sync_floor - 1} was mixed"
        self.ignored.record(peer, "stale_round", detail)

    def forget(self, peer: PeerId) -> None:
        """Drop everything about a peer that left the neighbourhood."""
        self._copies.pop(peer, None)
        self._late.pop(peer, None)
        self._last_key.pop(peer, None)
        self._replayed_keys.pop(peer, None)
        self.receiver.forget(peer)

    def snapshot_bytes(self) -> int:
        return sum(c.numel() * c.element_size() for h in self._copies.values() for c in h.values())


def _digest(payload: bytes) -> bytes:
    """What tells the same message again from any other (BLAKE3, as signatures hash: several
    times faster than SHA-256 on a 4 MB keyframe)."""
    return blake3(payload).digest()


def _topic_peer(topic: str) -> str:
    """The peer level of a topic, for log lines about messages that failed before parsing."""
    levels = topic.split("/")
    return levels[3] if len(levels) >= 4 else repr(topic[:60])
