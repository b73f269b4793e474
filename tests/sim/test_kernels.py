"""The fused CPU kernels' own contract: thread count, shapes. Their bits are checked against the
per-peer reference in test_engines_mixer.py and test_engines_choco.py."""

from __future__ import annotations

import subprocess
import sys

import numba
import numpy as np
import pytest
import torch

from sim import kernels


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


def test_mix_rows_refuses_mismatched_shapes() -> None:
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="row pointers"):
        kernels.mix_rows(x, x, np.zeros(3, dtype=np.int64), NONE, np.zeros(0), gamma=1.0)
    with pytest.raises(ValueError, match="row pointers"):
        kernels.mix_rows(
            x, torch.zeros(3, 3), np.zeros(4, dtype=np.int64), NONE, np.zeros(0), gamma=1.0
        )


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
