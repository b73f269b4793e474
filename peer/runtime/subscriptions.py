"""A peer's neighbourhood, seen from the runtime: what it expects of received frames, its
topics, the membership graph recomputed from announced presence, and its subscriptions.

:class:`PeerRuntime <peer.runtime.runtime.PeerRuntime>` gets these methods from
:class:`NeighbourhoodMixin`; they read and set the runtime's attributes declared below.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from peer.runtime.neighbours import Neighbourhood, membership_neighbourhood
from protocol.envelope import envelope_bound
from protocol.topics import subscription, topic
from protocol.types import PeerId
from protocol.validation import Expectations

if TYPE_CHECKING:
    from peer.config import PeerConfig
    from peer.runtime.inbound import Inbound
    from peer.runtime.learning import LocalLearner
    from peer.runtime.liveness import Liveness
    from peer.security.credentials import Credentials
    from peer.transport import Transport

__all__ = ["NeighbourhoodMixin"]

log = logging.getLogger("peer.runtime.runtime")  # the runtime's log lines, as before the split


class NeighbourhoodMixin:
    """The neighbourhood and subscription methods of the peer runtime."""

    config: PeerConfig
    learner: LocalLearner
    credentials: Credentials
    transport: Transport
    inbound: Inbound
    liveness: Liveness
    me: PeerId
    hood: Neighbourhood
    _static: Neighbourhood | None
    _subscribed: set[str]

    def _expectations(self, hood: Neighbourhood) -> Expectations:
        ident = self.config.identity
        return Expectations(
            swarm=ident.swarm,
            model=self.learner.fingerprint,
            senders=hood.neighbours,
            n_params=self.learner.num_params,
            max_bytes=min(
                self.config.limits.max_message_bytes, envelope_bound(self.learner.num_params)
            ),
            trust=self.credentials.trust,
        )

    def _topic(self, kind: str, peer: PeerId) -> str:
        ident = self.config.identity
        return topic(kind, prefix=ident.prefix, swarm=ident.swarm, peer=peer)  # type: ignore[arg-type]

    def _refresh_membership(self) -> None:
        """Membership mode: recompute the graph when the announced live set changed."""
        if self._static is not None:
            return
        # Presence only (retained online, and the will for crashes): silence is no evidence
        # here, since a peer hears only its in-neighbours, and every peer must derive the same
        # graph from the same announcements.
        live = self.liveness.announced()
        hood = membership_neighbourhood(live, me=self.me, seed=self.config.topology.seed)
        if hood.weights != self.hood.weights:
            for gone in self.hood.neighbours - hood.neighbours:
                self.inbound.forget(gone)
            log.info(
                "%s: membership now %d peers; in-neighbours %s",
                self.me,
                hood.size,
                ", ".join(sorted(hood.neighbours)) or "none",
            )
            self.hood = hood
            self.inbound.expected = self._expectations(hood)

    async def _update_subscriptions(self) -> None:
        ident = self.config.identity
        wanted = {
            self._topic(kind, peer) for peer in self.hood.neighbours for kind in ("key", "delta")
        }
        if self._static is None:
            wanted.add(subscription("presence", prefix=ident.prefix, swarm=ident.swarm))
        else:
            wanted |= {self._topic("presence", peer) for peer in self.hood.neighbours}
        gone, new = self._subscribed - wanted, wanted - self._subscribed
        if gone:
            await self.transport.unsubscribe(sorted(gone))
        if new:
            await self.transport.subscribe(sorted(new))
        self._subscribed = wanted
