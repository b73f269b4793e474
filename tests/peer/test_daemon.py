"""``rumor peer``'s start-up: checks that need the graph (a graph file's size is known only then),
and torch's thread count from ``learning.threads``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from peer.config import config_from_dict
from peer.runtime.daemon import data_share
from peer.runtime.neighbours import static_neighbourhood
from peer.up.procs import launch
from protocol.errors import ConfigError


def _share(tmp_path: Path, learning: dict[str, object]) -> tuple[int, int]:
    graph = tmp_path / "swarm.edgelist"
    graph.write_text("a b\nb c\nc a\n")
    config = config_from_dict(
        {
            "identity": {"peer": "b"},
            "topology": {"file": str(graph)},
            "learning": learning,
        }
    )
    return data_share(config, static_neighbourhood(config.topology, me="b"))


def test_a_graph_file_gives_the_default_share(tmp_path: Path) -> None:
    assert _share(tmp_path, {}) == (1, 3)  # b is the second of a, b, c
    assert _share(tmp_path, {"partition_index": 2}) == (2, 3)


def test_a_partition_index_beyond_the_graph_file_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"learning\.partition_index = 65536: expected 0 to 2"):
        _share(tmp_path, {"partition_index": 65536})


@pytest.mark.slow
def test_learning_threads_reaches_torch_in_the_peer_process(tmp_path: Path) -> None:
    # One more than torch's default here, so the line can only come from the setting.
    wanted = torch.get_num_threads() + 1
    config = tmp_path / "peer.toml"
    config.write_text(
        '[identity]\npeer = "p1"\nswarm = "s"\n'
        f"[broker]\nport = {_unused_port()}\nconnect_timeout_s = 300.0\n"
        '[topology]\nfamily = "ring"\nsize = 3\nnode = 1\n'
        f'[learning]\ntask = "consensus"\nthreads = {wanted}\n'
    )
    peer = launch("p1", config, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while f"p1: torch intra-op threads {wanted}\n" not in peer.log.read_text():
            assert peer.running, peer.log.read_text()[-2000:]
            assert time.monotonic() < deadline, peer.log.read_text()
            time.sleep(0.05)
        os.kill(peer.process.pid, signal.SIGTERM)
        assert peer.process.wait(timeout=120) == 0, peer.log.read_text()[-2000:]
    finally:
        peer.process.kill()
        peer.process.wait()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


_NOT_FOR_A_PEER = (
    "matplotlib",
    "scipy",
    "pandas",
    "torch._dynamo",
    "torch._inductor",
    "sim.engines",
    "sim.training",
    "sim.kernels",
    "numba",
    "sim.plots",
    "prometheus_client",  # only with [metrics] port set
)


def test_a_peer_process_imports_no_plotting_simulator_compiler_or_metrics_modules() -> None:
    """Every module a peer imports stays resident (about 12 MB for networkx, 2 for
    prometheus-client): the daemon's imports and a learner's build must not pull in these."""
    probe = (
        "import contextlib, io, sys\n"
        "import peer.cli, peer.runtime.daemon\n"
        "from peer.config import config_from_dict\n"
        "from peer.runtime.learning import load_learner\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    peer.cli.main(['peer', '--help'])\n"
        "config = config_from_dict({'identity': {'peer': 'p0'}, 'topology': {'family': 'ring',"
        " 'size': 2, 'node': 0}, 'learning': {'task': 'synthetic', 'model': 'mlp'}})\n"
        "load_learner(config, index=0, peers=2)\n"
        f"heavy = {_NOT_FOR_A_PEER!r}\n"
        "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.')"
        " for h in heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
