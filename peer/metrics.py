"""``[metrics]``: a peer's Prometheus endpoint, served with ``prometheus-client``.

One collector reads, at each scrape, the last round's :class:`~peer.runtime.stats.RoundStats`
(the same record the telemetry topic carries), the transport's live byte counters and the
availability gate; nothing else in the daemon knows about Prometheus. Every sample carries the
labels ``peer`` and ``swarm``.

>>> m = PeerMetrics(peer="p0", swarm="lab")
>>> m.update(RoundStats(round=3, train_loss=0.5, accuracy=0.8, neighbours=2, alive=2, received=2,
...                     bytes_out=10, bytes_in=20, rejected={"bad_signature": 4}))
>>> text = exposition(m)
>>> 'rumor_rounds_total{peer="p0",swarm="lab"} 3.0' in text
True
>>> 'rumor_frames_rejected_total{peer="p0",reason="bad_signature",swarm="lab"} 4.0' in text
True
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from typing import TYPE_CHECKING, Literal

from peer.config import MetricsConfig
from peer.runtime.stats import RoundStats, Timings
from peer.transport import TransportStats
from protocol.errors import ConfigError

if TYPE_CHECKING:  # prometheus-client is imported only to serve or format metrics
    from prometheus_client.core import Metric

__all__ = ["PeerMetrics", "exposition", "serve_metrics"]

log = logging.getLogger(__name__)

_PHASES = tuple(f.name for f in fields(Timings))
_Kind = Literal["counter", "gauge"]
_COUNTER: _Kind = "counter"
_GAUGE: _Kind = "gauge"


class PeerMetrics:
    """The collector; :meth:`update` after every round (thread-safe against scrapes).

    A plain object with ``collect``, as prometheus-client's registry takes it: a peer that
    serves no metrics never imports prometheus-client (about 2 MB resident)."""

    def __init__(
        self,
        *,
        peer: str,
        swarm: str,
        transport: Callable[[], TransportStats] | None = None,
        paused: Callable[[], tuple[bool, int]] | None = None,
    ) -> None:
        """``transport``: live byte counters; ``paused``: (paused now, pauses so far)."""
        self._labels = {"peer": peer, "swarm": swarm}
        self._transport, self._paused = transport, paused
        self._lock = threading.Lock()
        self._last: RoundStats | None = None
        self._phase_totals = dict.fromkeys(_PHASES, 0.0)

    def update(self, stats: RoundStats) -> None:
        with self._lock:
            self._last = stats
            for phase in _PHASES:
                self._phase_totals[phase] += getattr(stats.timings, phase)

    def _family(self, kind: _Kind, name: str, doc: str, extra: Iterable[str] = ()) -> Metric:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        family = CounterMetricFamily if kind == _COUNTER else GaugeMetricFamily
        return family(name, doc, labels=[*self._labels, *extra])

    def _one(self, kind: _Kind, name: str, doc: str, value: float) -> Metric:
        family = self._family(kind, name, doc)
        family.add_metric(list(self._labels.values()), value)  # type: ignore[attr-defined]
        return family

    def _by(self, kind: _Kind, name: str, doc: str, key: str, values: dict[str, float]) -> Metric:
        family = self._family(kind, name, doc, [key])
        for label, value in sorted(values.items()):
            family.add_metric([*self._labels.values(), label], value)  # type: ignore[attr-defined]
        return family

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            s, totals = self._last, dict(self._phase_totals)
        live = None if self._transport is None else self._transport()
        source = live if live is not None else s
        out, into = (0, 0) if source is None else (source.bytes_out, source.bytes_in)
        yield self._one(_COUNTER, "rumor_rounds", "Gossip rounds finished", s.round if s else 0)
        yield self._one(_COUNTER, "rumor_bytes_out", "MQTT payload bytes published", out)
        yield self._one(_COUNTER, "rumor_bytes_in", "MQTT payload bytes received", into)
        if self._paused is not None:
            paused, pauses = self._paused()
            yield self._one(
                _GAUGE, "rumor_paused", "1 while outside the availability window", paused
            )
            yield self._one(_COUNTER, "rumor_pauses", "Times the peer paused", pauses)
        if s is not None:
            yield from self._round(s, totals)

    def _round(self, s: RoundStats, totals: dict[str, float]) -> Iterator[Metric]:
        by, one = self._by, self._one
        if s.accuracy is not None:
            yield by(
                _GAUGE,
                "rumor_metric",
                "The metric on held-out data",
                "metric",
                {s.metric: s.accuracy},
            )
        if s.train_loss is not None:
            yield one(_GAUGE, "rumor_train_loss", "Mean training loss, last round", s.train_loss)
        yield by(_COUNTER, "rumor_frames_rejected", "Messages rejected", "reason", dict(s.rejected))
        yield by(
            _COUNTER, "rumor_frames_ignored", "Valid frames not mixed", "reason", dict(s.ignored)
        )
        yield one(_COUNTER, "rumor_round_timeouts", "Sync rounds ended by the timeout", s.timeouts)
        yield one(_COUNTER, "rumor_publish_failed", "Frames not sent (link down)", s.publish_failed)
        yield one(_GAUGE, "rumor_neighbours", "In-neighbours in the graph", s.neighbours)
        yield one(_GAUGE, "rumor_neighbours_live", "In-neighbours alive", s.alive)
        yield one(_GAUGE, "rumor_neighbours_mixed", "In-neighbours mixed last round", s.received)
        phases = {p: getattr(s.timings, p) for p in _PHASES}
        yield by(_GAUGE, "rumor_round_phase_seconds", "Last round, per phase", "phase", phases)
        yield by(_COUNTER, "rumor_round_phase_seconds", "All rounds, per phase", "phase", totals)
        yield one(_GAUGE, "rumor_peak_rss_bytes", "Peak resident memory", s.peak_rss_mb * 2**20)
        rss = _rss_bytes()
        if rss is not None:
            yield one(_GAUGE, "rumor_rss_bytes", "Resident memory now", rss)


def _rss_bytes() -> float | None:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss)
    except Exception:  # a platform without it: leave the sample out
        return None


def exposition(collector: PeerMetrics) -> str:
    """The text a scrape returns for ``collector`` alone."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


@contextlib.contextmanager
def serve_metrics(config: MetricsConfig, collector: PeerMetrics) -> Iterator[None]:
    """Serve ``collector`` on ``config.address:config.port`` for the ``with`` block (no port:
    nothing). A port that cannot be bound is a ConfigError naming it."""
    if config.port is None:
        yield
        return
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, thread = start_http_server(config.port, config.address, registry=registry)
    except OSError as exc:
        where = f"{config.address}:{config.port}"
        raise ConfigError(
            f"metrics.port = {config.port}: cannot listen on {where} ({exc.strerror})"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", config.address, config.port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
