"""``[metrics]``: the collector's samples and the HTTP endpoint (a real scrape over loopback)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from peer.config import MetricsConfig, config_from_dict
from peer.metrics import PeerMetrics, exposition, serve_metrics
from peer.runtime.stats import RoundStats, Timings
from peer.transport import TransportStats
from protocol.errors import ConfigError


def _stats(round: int) -> RoundStats:
    return RoundStats(
        round=round,
        train_loss=0.25,
        accuracy=0.5,
        neighbours=4,
        alive=3,
        received=2,
        bytes_out=1,
        bytes_in=2,
        rejected={"bad_signature": 7, "unsigned": 1},
        timings=Timings(train=1.0, wait=0.5, total=2.0),
        peak_rss_mb=100.0,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_samples_follow_the_rounds_and_the_live_transport() -> None:
    live = TransportStats(bytes_out=1000, bytes_in=2000)
    metrics = PeerMetrics(peer="p0", swarm="lab", transport=lambda: live, paused=lambda: (True, 2))
    metrics.update(_stats(1))
    metrics.update(_stats(2))
    text = exposition(metrics)
    labels = 'peer="p0",swarm="lab"'
    for sample in (
        f"rumor_rounds_total{{{labels}}} 2.0",
        f"rumor_bytes_out_total{{{labels}}} 1000.0",
        f"rumor_bytes_in_total{{{labels}}} 2000.0",
        'rumor_frames_rejected_total{peer="p0",reason="bad_signature",swarm="lab"} 7.0',
        f'rumor_metric{{metric="accuracy",{labels}}} 0.5',
        f"rumor_neighbours_live{{{labels}}} 3.0",
        'rumor_round_phase_seconds{peer="p0",phase="train",swarm="lab"} 1.0',
        'rumor_round_phase_seconds_total{peer="p0",phase="train",swarm="lab"} 2.0',
        f"rumor_paused{{{labels}}} 1.0",
        f"rumor_pauses_total{{{labels}}} 2.0",
        f"rumor_peak_rss_bytes{{{labels}}} 1.048576e+08",
    ):
        assert sample in text, sample
    assert "rumor_rss_bytes{" in text


def test_before_the_first_round_only_the_counters_show() -> None:
    text = exposition(PeerMetrics(peer="p0", swarm="lab"))
    assert 'rumor_rounds_total{peer="p0",swarm="lab"} 0.0' in text
    assert "rumor_metric{" not in text


def test_the_endpoint_serves_the_collector() -> None:
    port = _free_port()
    metrics = PeerMetrics(peer="p0", swarm="lab")
    metrics.update(_stats(3))
    url = f"http://127.0.0.1:{port}/metrics"
    with serve_metrics(MetricsConfig(port=port), metrics), urllib.request.urlopen(url) as reply:
        text = reply.read().decode()
    assert 'rumor_rounds_total{peer="p0",swarm="lab"} 3.0' in text
    with pytest.raises(urllib.error.URLError, match="refused"):  # closed with the block
        urllib.request.urlopen(url, timeout=10)


def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(ConfigError, match=f"metrics.port = {port}: cannot listen"),
            serve_metrics(MetricsConfig(port=port), PeerMetrics(peer="p", swarm="s")),
        ):
            pass


def test_metrics_section_is_validated() -> None:
    data = {"identity": {"peer": "p0"}, "topology": {"family": "ring", "size": 3, "node": 0}}
    assert config_from_dict({**data, "metrics": {"port": 9108}}).metrics.port == 9108
    with pytest.raises(ConfigError, match=r"metrics\.port = 70000"):
        config_from_dict({**data, "metrics": {"port": 70000}})
