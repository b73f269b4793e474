"""The fused CPU kernels' own contract: thread count, shapes. Their bits are checked against the
per-peer reference in test_engines_mixer.py and test_engines_choco.py."""

from __future__ import annotations

import subprocess
import sys

import numba
import numpy as np
import pytest
import torch

from protocol.errors import ConfigError
from sim import kernels
from sim.config import SimConfig
from sim.runner import Simulation


def test_the_kernels_use_as_many_threads_as_torch() -> None:
    before = torch.get_num_threads()
    x = torch.ones(4, 3)
    pointers, senders, weights = np.array([0, 1, 1, 1, 1]), np.array([1]), np.array([0.5])
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            kernels.mix_rows(x, x.clone(), pointers, senders, weights, gamma=1.0)
            assert numba.get_num_threads() == min(threads, numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    finally:
        torch.set_num_threads(before)


NONE = np.zeros(0, dtype=np.int64)


def test_a_process_first_kernel_leaves_torch_thread_count_alone() -> None:
    """Numba starts its OpenMP workers on a process's first parallel kernel, which reset torch's
    thread count to the number of cores (``rumor sim --threads 1`` then trained on two)."""
    probe = (
        "import numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "from sim import kernels\n"
        "x = torch.ones(4, 3)\n"
        "kernels.mix_rows(x, x.clone(), np.array([0, 1, 1, 1, 1]), np.array([1]),"
        " np.array([0.5]), gamma=1.0)\n"
        "kernels.publish_raw(x.clone(), x)\n"
        "print(torch.get_num_threads())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.split() == ["1"]


def test_mix_rows_refuses_mismatched_shapes_dtypes_and_shared_memory() -> None:
    x = torch.zeros(3, 2)
    empty = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="4 row pointers, got 3"):
        kernels.mix_rows(x, x.clone(), np.zeros(3, dtype=np.int64), NONE, np.zeros(0), gamma=1.0)
    with pytest.raises(ValueError, match="of one dtype"):
        kernels.mix_rows(x, torch.zeros(3, 3), empty, NONE, np.zeros(0), gamma=1.0)
    with pytest.raises(ValueError, match="of one dtype"):
        kernels.mix_rows(x, x.double(), empty, NONE, np.zeros(0), gamma=1.0)
    with pytest.raises(ValueError, match="must not share memory"):
        kernels.mix_rows(x, x, empty, NONE, np.zeros(0), gamma=1.0)
    with pytest.raises(ValueError, match="contiguous CPU tensors"):
        kernels.mix_rows(
            x.t(), x.t().clone(), np.zeros(3, dtype=np.int64), NONE, np.zeros(0), gamma=1.0
        )
    pointers, sent = np.array([0, 1, 1, 1]), np.array([1])
    with pytest.raises(ValueError, match="do not describe edges"):  # a float32 sum of weights
        kernels.mix_rows(x, x.clone(), pointers, sent, np.array([0.5], np.float32), gamma=1.0)


def test_publish_raw_refuses_what_would_write_out_of_bounds() -> None:
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="of one dtype"):
        kernels.publish_raw(torch.zeros(2, 2), x)
    with pytest.raises(ValueError, match="of one dtype"):
        kernels.publish_raw(x.double(), x)
    with pytest.raises(ValueError, match="must not share memory"):
        kernels.publish_raw(x, x)


@pytest.mark.parametrize(
    ("pointers", "senders"),
    [([0, 1, 1, 2], [0]), ([1, 1, 1, 1], [0]), ([0, 2, 1, 2], [0, 1]), ([0, 1, 1, 1], [3])],
    ids=["too-few-senders", "not-from-zero", "decreasing", "sender-out-of-range"],
)
def test_mix_rows_refuses_edges_that_would_read_stray_memory(
    pointers: list[int], senders: list[int]
) -> None:
    x = torch.zeros(3, 2)
    sent = np.array(senders, dtype=np.int64)
    with pytest.raises(ValueError, match="do not describe edges among 3 rows"):
        kernels.mix_rows(x, x.clone(), np.array(pointers), sent, np.full(len(sent), 0.5), gamma=1.0)


def test_only_plain_cpu_tensors_are_usable() -> None:
    x = torch.zeros(3, 4)
    assert kernels.usable(x, x)
    assert not kernels.usable(x.t())
    assert not kernels.usable(torch.zeros(2, requires_grad=True))


def test_without_numba_the_simulator_runs_the_torch_formulation_to_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A device installs rumor without the sim extra: the simulator then mixes and publishes
    through torch, and ends at the very parameters the kernels give."""
    config = SimConfig(task="synthetic", peers=12, rounds=4, topology="random_regular:d=4")

    def run() -> torch.Tensor:
        sim = Simulation(config)
        for _ in sim.run():
            pass
        return sim.engine.params().clone()

    with_kernels = run()
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    without = run()
    assert torch.equal(with_kernels.view(torch.int32), without.view(torch.int32))


def test_calling_a_kernel_without_numba_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernels, "numba", None)
    kernels._compiled.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"pip install 'rumor\[sim\]'"):
            kernels.publish_raw(torch.zeros(2, 2), torch.ones(2, 2))
    finally:
        kernels._compiled.cache_clear()
