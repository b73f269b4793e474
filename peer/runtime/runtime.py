"""The peer runtime: the gossip round loop, as an async context manager over a Transport.

::

    async with MqttTransport(settings, presence=presence) as link:
        async with PeerRuntime(config, link, learner, neighbourhood=hood) as runtime:
            async for stats in runtime.rounds():
                ...  # log, write, display: the runtime itself only yields

One round, in the simulator's order: train (worker thread) -> encode -> publish -> receive
(sync: wait for this round's frames from the live in-neighbours, up to
``gossip.round_timeout_s``; async: no barrier) -> mix with what arrived (missing weight stays
with the peer); then, every ``learning.eval_every`` rounds and in the last one (a stop request
that comes during a round makes it the last), the held-out evaluation (worker thread). The
metric in the other rounds' stats is the last one measured. A background task owned by the
runtime's TaskGroup feeds every received message to :class:`~peer.runtime.inbound.Inbound`.
:meth:`PeerRuntime.stop` ends the loop after the current round; leaving the context writes a
final checkpoint. The neighbourhood and subscription methods live in
:mod:`peer.runtime.subscriptions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import resource
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import torch

from peer.availability import AvailabilityGate, catch_up_round
from peer.checkpoint import CheckpointError, CheckpointStore
from peer.config import PeerConfig
from peer.runtime.attack import Attacker
from peer.runtime.finite import all_finite
from peer.runtime.gossip import MixScratch, first_of, mix_received, wait_for_round
from peer.runtime.inbound import Inbound
from peer.runtime.learning import LocalLearner
from peer.runtime.liveness import Liveness, track_link
from peer.runtime.neighbours import Neighbourhood
from peer.runtime.privacy import PeerPrivacy
from peer.runtime.rejections import Rejections
from peer.runtime.resume import restore, snapshot, state_problem
from peer.runtime.stats import RoundStats, Timings, to_json
from peer.runtime.subscriptions import NeighbourhoodMixin
from peer.security.credentials import Credentials, load_credentials
from peer.transport import Transport, TransportError
from protocol.aggregator_names import check_aggregator_spec
from protocol.choco import ChocoReceiver, ChocoSender
from protocol.codecs import codec_from_spec, default_gamma
from protocol.envelope import Envelope, encode_envelope, sign_envelope
from protocol.seeds import sender_seed
from protocol.spec import parse_spec
from protocol.types import PeerId

if TYPE_CHECKING:
    from peer.faults.inject import Faults

__all__ = ["PeerRuntime"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_WORKER = "rumor-learning"


def peak_rss_mb(status: Path = Path("/proc/self/status")) -> float:
    """Peak resident set size of this process in MiB: Linux's VmHWM where there is one.

    ``ru_maxrss`` survives exec: a peer started by a large process (``rumor up``, a benchmark)
    reported that process's size at the fork (800 MB for a 10 MB child), not its own peak.
    """
    with contextlib.suppress(OSError):
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # in kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class PeerRuntime(NeighbourhoodMixin):
    """One peer's gossip loop; see the module docstring."""

    def __init__(
        self,
        config: PeerConfig,
        transport: Transport,
        learner: LocalLearner,
        *,
        neighbourhood: Neighbourhood | None,
        stop: asyncio.Event | None = None,
        credentials: Credentials | None = None,
        gate: AvailabilityGate | None = None,
        attacker: Attacker | None = None,
        faults: Faults | None = None,
    ) -> None:
        """``neighbourhood`` is the static one, or None for a membership-driven topology;
        ``stop``, when given, is an event that :meth:`stop` sets and others may set too;
        ``credentials``: the key to sign with and the trust list (default: ``[security]``'s);
        ``gate``: holds each round until ``[availability]`` allows training;
        ``attacker``: publish its forged frames and never mix (``rumor peer --attack``);
        ``faults``: a fault plan's hooks (``rumor peer --faults`` only, :mod:`peer.faults`)."""
        self.attacker = attacker
        self.faults = faults
        self.config = config
        self.gate = gate
        self.credentials = credentials or load_credentials(config.security)
        self.transport = transport
        self.learner = learner
        self.me: PeerId = config.identity.peer
        self._static = neighbourhood
        self.hood = neighbourhood or Neighbourhood(me=self.me, index=learner.index, size=1)
        gossip = config.gossip
        self.codec = codec_from_spec(parse_spec(gossip.codec))
        self.gamma = default_gamma(self.codec.spec) if gossip.gamma is None else gossip.gamma
        self.aggregator = check_aggregator_spec(gossip.aggregator)
        self.stable_seed = sender_seed(config.learning.seed, learner.index)
        dp = config.privacy.params
        self.privacy = (
            None if dp is None else PeerPrivacy(dp, index=learner.index, seed=config.privacy.seed)
        )
        self.round = 0
        self.x = learner.start.clone()
        self._scratch = MixScratch(self.x)
        self.sender = ChocoSender(
            self.codec,
            learner.num_params,
            keyframe_interval=gossip.keyframe_interval,
            dtype=self.x.dtype,
        )
        self.rejections = Rejections()
        self.liveness = Liveness(
            silence_timeout_s=gossip.silence_timeout_s, startup_grace_s=gossip.startup_grace_s
        )
        self.inbound = Inbound(
            me=self.me,
            prefix=config.identity.prefix,
            expected=self._expectations(self.hood),
            receiver=ChocoReceiver(
                learner.num_params, dtype=self.x.dtype, max_abs=config.limits.max_abs_value
            ),
            liveness=self.liveness,
            rejections=self.rejections,
        )
        self.publish_failed = 0
        self.checkpoints_refused = 0
        """Checkpoints skipped: the state failed the sanity check, or the write failed."""
        self.timeouts = 0
        """Sync rounds whose barrier ended at ``round_timeout_s`` with frames missing."""
        self._accuracy: float | None = None
        self._evaluated_at: int | None = None
        """The round the metric was last measured after (``learning.eval_every``)."""
        self._resync = False
        """Set when receivers may have lost track of our frames: the next one is a keyframe."""
        self._connects_seen = 0
        self._store = (
            None
            if config.storage.checkpoint_dir is None
            else CheckpointStore(config.storage.checkpoint_dir)
        )
        self._stop = asyncio.Event() if stop is None else stop
        self._stack = contextlib.AsyncExitStack()
        self._subscribed: set[str] = set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_WORKER)
        """Training, evaluation and checkpoints, always on this one thread: a pool's changing
        threads would each keep a training workspace and a malloc arena of their own."""

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._restore()
        if self.privacy is not None and self.round > 0:
            self.privacy.resumed(self.round, checkpoint_every=self.config.storage.checkpoint_every)
        if self.faults is not None:
            self.round = self.faults.resume(self.round)
        if self.config.gossip.mode == "sync":
            self.inbound.sync_floor = self.round
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._pump = group.create_task(self._receive(), name=f"receive-{self.me}")
        await self._update_subscriptions()
        self._connects_seen = self.transport.stats.connects
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._learning(self._checkpoint)
        finally:
            self._pump.cancel()
            self._worker.shutdown(wait=False)
            await self._stack.aclose()

    def _learning(self, fn: Callable[..., _T], *args: object) -> asyncio.Future[_T]:
        """``fn(*args)`` on the learning thread."""
        return asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def stop(self) -> None:
        """End the loop after the current round (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _restore(self) -> None:
        if self._store is None:
            return
        state = self._store.load_latest()
        if state is None:
            return
        resumed = restore(
            state,
            codec=self.codec,
            keyframe_interval=self.config.gossip.keyframe_interval,
            model=self.learner.fingerprint,
        )
        self.learner.load_state_tensors(state.tensors)
        self.round, self.x, self.sender = resumed.round, resumed.x, resumed.sender
        log.info("%s resumes at round %d from its checkpoint", self.me, self.round)

    def _checkpoint(self) -> None:
        """Save unless the state fails the sanity check; a failed write is logged, not fatal
        (the previous checkpoint stays, and a full disk must not stop the peer)."""
        if self._store is None:
            return
        max_abs = self.config.limits.max_abs_value
        problem = state_problem(self.x, self.sender.x_hat, max_abs=max_abs)
        if problem is not None:
            self.checkpoints_refused += 1
            log.warning("%s: round %d not checkpointed: %s", self.me, self.round, problem)
            return
        state = snapshot(
            round=self.round,
            x=self.x,
            sender=self.sender,
            checkpoint_every=self.config.storage.checkpoint_every,
            peer=self.me,
            model=self.learner.fingerprint,
            extra=self.learner.state_tensors(),
            model_spec=self.config.learning.model,
        )
        try:
            self._store.save(state)
        except CheckpointError as exc:
            self.checkpoints_refused += 1
            log.warning("%s: %s; the previous checkpoint stays", self.me, exc)

    async def _receive(self) -> None:
        """Every received message to the inbound path; every reconnect to liveness."""
        async with asyncio.TaskGroup() as group:
            link = group.create_task(track_link(self.liveness, self.transport.state))
            async for message in self.transport.messages():
                if self.faults is None or self.faults.admit(message, self.inbound):
                    self.inbound.handle(message)
            link.cancel()

    # -- the round loop --------------------------------------------------------------------

    async def rounds(self) -> AsyncIterator[RoundStats]:
        """Run rounds until ``gossip.rounds`` are done or :meth:`stop` is called."""
        total = self.config.gossip.rounds
        self.liveness.start_grace()
        while not self._stop.is_set() and (total is None or self.round < total):
            if self.faults is not None:
                await self.faults.before_round(self.round, self._stop, self.transport.state)
                if self._stop.is_set():
                    break
            idle = self.inbound.keep_newest  # a paused peer holds one copy per neighbour
            if self.gate is not None and await self.gate.until_available(
                self.transport, self._stop, idle=idle
            ):
                self._rejoin(total)
                if self._stop.is_set() or (total is not None and self.round >= total):
                    break
            stats = await self._one_round(total)
            yield stats
        if total is not None and self.round >= total:
            log.info("%s finished its %d rounds", self.me, total)

    def _rejoin(self, total: int | None) -> None:
        """After a pause: continue at the live neighbours' round (no one waits while we replay)."""
        newest = [self.inbound.newest_round(p) for p in self._alive()]
        self.round = catch_up_round(self.round, newest, total=total)
        if self.inbound.sync_floor is not None:
            self.inbound.sync_floor = self.round

    async def _one_round(self, total: int | None) -> RoundStats:
        r = self.round
        t0 = time.perf_counter()
        self._refresh_membership()
        await self._update_subscriptions()
        x, loss = await self._learning(self.learner.train, self.x, r)
        if not all_finite(x):
            log.error("%s: local training diverged in round %d; kept the last model", self.me, r)
            x, loss = self.x, float("nan")
        if self.privacy is not None:
            if x is not self.x:  # trained on its data: noise once
                x = self.privacy.release(self.x, x, round=r)
            loss = float("nan")  # a loss on private data: neither in frames nor in telemetry
        train = time.perf_counter() - t0
        alive, received, exchange = await self._exchange(x, r, loss)
        self.round = r + 1
        done = total is not None and self.round >= total
        evaluate = checkpoint = 0.0
        # Always at the end: the last round, or the one a stop request ends the loop after.
        if self.round % self.config.learning.eval_every == 0 or done or self.stopping:
            t1 = time.perf_counter()
            self._accuracy = await self._learning(self.learner.accuracy, self.x)
            self._evaluated_at = self.round
            evaluate = time.perf_counter() - t1
        if self._store is not None and self.round % self.config.storage.checkpoint_every == 0:
            t2 = time.perf_counter()
            await self._learning(self._checkpoint)
            checkpoint = time.perf_counter() - t2
        timings = Timings(
            train=train,
            **exchange,
            evaluate=evaluate,
            checkpoint=checkpoint,
            total=time.perf_counter() - t0,
        )
        stats = self._round_stats(loss, alive, received, timings, done=done)
        await self._telemetry(stats)
        return stats

    async def _exchange(
        self, x: torch.Tensor, r: int, loss: float
    ) -> tuple[frozenset[PeerId], int, dict[str, float]]:
        """Encode, publish, wait, mix: (alive, mixed, seconds per phase). Frames handled on the
        event loop while publishing or waiting count as ``decode``, not as either."""
        t1 = time.perf_counter()
        if self._receivers_may_have_lost_track():
            self.sender.force_keyframe()
        out = x if self.attacker is None else self.attacker.forge(x, r)
        payload, key = self._encode(out, r, loss)
        t2 = time.perf_counter()
        self.inbound.decode_s = 0.0
        await self._publish(self._topic("key" if key else "delta", self.me), payload, key)
        del payload  # the frame's bytes are not needed while waiting
        t3 = time.perf_counter()
        decode_publish = self.inbound.decode_s
        alive = await self._wait(r)
        t4 = time.perf_counter()
        decode = self.inbound.decode_s
        received = self._mix(x, r, alive)
        t5 = time.perf_counter()
        phases = {
            "encode": t2 - t1,
            "publish": max(0.0, t3 - t2 - decode_publish),
            "wait": max(0.0, t4 - t3 - (decode - decode_publish)),
            "decode": decode,
            "mix": t5 - t4,
        }
        return alive, received, phases

    def _round_stats(
        self, loss: float, alive: frozenset[PeerId], received: int, timings: Timings, *, done: bool
    ) -> RoundStats:
        return RoundStats(
            round=self.round,
            train_loss=loss,
            accuracy=self._accuracy,
            evaluated_at=self._evaluated_at,
            metric=self.learner.metric_name,
            higher_is_better=self.learner.higher_is_better,
            neighbours=len(self.hood.weights),
            alive=len(alive),
            received=received,
            bytes_out=self.transport.stats.bytes_out,
            bytes_in=self.transport.stats.bytes_in,
            rejected=self._rejected(),
            ignored=dict(sorted(self.inbound.ignored.counts.items())),
            timeouts=self.timeouts,
            publish_failed=self.publish_failed,
            timings=timings,
            peak_rss_mb=peak_rss_mb(),
            dp_epsilon=None if self.privacy is None else self.privacy.epsilon,
            done=done,
        )

    def _rejected(self) -> dict[str, int]:
        counts = self.rejections.counts + self.transport.stats.rejected
        return dict(sorted(counts.items()))

    def _encode(self, x: torch.Tensor, r: int, loss: float) -> tuple[bytes, bool]:
        frame = self.sender.step(x, seed=self.stable_seed)
        meta: dict[str, float | int] = {
            "samples": self.learner.batch_size * self.learner.local_steps
        }
        if math.isfinite(loss):
            meta["loss"] = loss
        env = Envelope(
            swarm=self.config.identity.swarm,
            sender=self.me,
            round=r,
            frame=frame,
            model=self.learner.fingerprint,
            meta=meta,
        )
        key = self.credentials.key
        data = encode_envelope(env) if key is None else sign_envelope(env, key)
        return data, frame.kind == "key"

    def _receivers_may_have_lost_track(self) -> bool:
        """After a failed publish, a reconnect (our will said offline), or a peer (re)joining:
        the retained keyframe is older than our deltas, so send a fresh one."""
        connects = self.transport.stats.connects
        lost = self._resync or self.inbound.joined or connects != self._connects_seen
        self._resync, self._connects_seen, self.inbound.joined = False, connects, False
        return lost

    async def _publish(self, where: str, payload: bytes, retain: bool) -> None:
        try:
            if self.faults is not None:
                await self.faults.before_publish()
            await self.transport.publish(where, payload, qos=1, retain=retain)
        except TransportError as exc:
            self.publish_failed += 1
            self._resync = True
            log.warning("%s: frame of round %d not sent: %s", self.me, self.round, exc)

    async def _telemetry(self, stats: RoundStats) -> None:
        ident = self.config.identity
        text = to_json(stats, peer=self.me, swarm=ident.swarm)
        with contextlib.suppress(TransportError):
            await self.transport.publish(self._topic("telemetry", self.me), text.encode(), qos=0)

    def _alive(self) -> frozenset[PeerId]:
        return self.liveness.live_set(self.hood.neighbours)

    async def _wait(self, r: int) -> frozenset[PeerId]:
        if self.config.gossip.mode == "async":
            await asyncio.sleep(0)
            return self._alive()
        timeout_s = self.config.gossip.round_timeout_s
        deadline = time.monotonic() + timeout_s
        if not self.transport.state.is_up:
            # Broker gone: the neighbours' wills say offline, but so would ours to them. Keep
            # the swarm's pace (a round per timeout) rather than race ahead alone.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await first_of(self.transport.state.wait_up(), self._stop.wait())
        left = max(0.0, deadline - time.monotonic())
        alive, timed_out = await wait_for_round(
            self.inbound, self._alive, r, timeout_s=left, stop=self._stop, me=self.me
        )
        self.timeouts += timed_out
        return alive

    def _mix(self, x: torch.Tensor, r: int, alive: frozenset[PeerId]) -> int:
        """Mix ``x`` with the neighbours' copies; set ``self.x``; return how many were mixed."""
        gossip = self.config.gossip
        staleness = None if gossip.mode == "sync" else gossip.staleness_bound
        if self.attacker is not None:
            self.x = x
            return self.attacker.receive(
                self.inbound, r, weights=self.hood.weights, alive=alive, staleness=staleness
            )
        self.x, mixed = mix_received(
            x,
            self.sender.x_hat,
            r,
            weights=self.hood.weights,
            inbound=self.inbound,
            alive=alive,
            staleness=staleness,
            gamma=self.gamma,
            aggregator=self.aggregator,
            scratch=self._scratch,
        )
        return mixed
