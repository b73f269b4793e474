"""Fused CPU kernels of the vector engine, compiled by Numba, with the daemon's arithmetic.

The torch formulation of a round's exact mixing makes about thirteen passes over float64 [N, P]
memory (a widening, a gather and a product-and-sum per neighbour, the self term, the model);
these kernels make one pass per receiver row, each element going through the very same float64
operations in the very same order as :func:`protocol.mixing.neighbour_sum` and
:func:`protocol.mixing.choco_update`, so the results are bit-identical (tests compare them with
the per-peer reference). Numba compiles without fast-math: no reassociation and no fused
multiply-add, so every product and sum is rounded where the reference rounds it.

Compiled code is cached next to this module (``__pycache__``), so a process pays the compilation
(about a second per kernel and dtype) only the first time. These kernels run on CPU tensors only;
on other devices, and where Numba is not installed (it comes with the ``sim`` extra, which a
peer does not need), the engine keeps its torch formulation: the same bits, slower.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from protocol.errors import ConfigError

try:
    import numba
except ImportError:  # pragma: no cover - the sim extra is not installed
    numba = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "mix_rows", "publish_raw", "usable"]

AVAILABLE = numba is not None
"""Whether Numba is installed (``pip install 'rumor[sim]'``), so the kernels can run."""

IntArray = npt.NDArray[np.int64]


def _mix_rows_source(
    x: Any, x_hat: Any, indptr: Any, senders: Any, weights: Any, gamma: float
) -> None:  # pragma: no cover - compiled; run through mix_rows
    n, p = x.shape
    for i in numba.prange(n):
        lo, hi = indptr[i], indptr[i + 1]
        if lo == hi:  # mixes nothing: left exactly as it was
            continue
        mixed = np.empty(p, np.float64)
        first, weight = senders[lo], weights[lo]
        total = weight
        for c in range(p):
            mixed[c] = np.float64(x_hat[first, c]) * weight
        for k in range(lo + 1, hi):
            sender, weight = senders[k], weights[k]
            total += weight
            for c in range(p):
                mixed[c] += np.float64(x_hat[sender, c]) * weight
        for c in range(p):
            step = mixed[c] - total * np.float64(x_hat[i, c])
            if gamma != 1.0:  # (times 1.0 changes no bit)
                step *= gamma
            x[i, c] = np.float64(x[i, c]) + step  # rounded once, on the store


def _publish_raw_source(x_hat: Any, x: Any) -> None:  # pragma: no cover - compiled
    n, p = x.shape
    for i in numba.prange(n):
        for c in range(p):
            x_hat[i, c] = x_hat[i, c] + (x[i, c] - x_hat[i, c])


@functools.cache
def _compiled() -> tuple[Callable[..., None], Callable[..., None]]:
    """The two kernels, compiled (or loaded from the cache) on first use."""
    if numba is None:
        raise ConfigError("the fused kernels need Numba: pip install 'rumor[sim]'")
    jit = numba.njit(parallel=True, cache=True, nogil=True)
    return jit(_mix_rows_source), jit(_publish_raw_source)


_given = threading.local()
"""The worker count last given to Numba by this thread (Numba keeps one per calling thread;
setting it costs about 20 us)."""


@contextlib.contextmanager
def _threads() -> Iterator[None]:
    """Numba's workers follow torch's intra-op thread count (``rumor sim --threads``), and
    torch's count survives the call: starting Numba's OpenMP workers (on a process's first
    parallel kernel) resets it to the number of cores."""
    torch_threads = torch.get_num_threads()
    most: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
    wanted = max(1, min(torch_threads, most))
    if getattr(_given, "threads", 0) != wanted:
        numba.set_num_threads(wanted)
        _given.threads = wanted
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the kernels can run on these tensors in place: Numba is installed, and they are
    contiguous, on the CPU, and not part of an autograd graph."""
    return AVAILABLE and _plain(*tensors)


def _plain(*tensors: torch.Tensor) -> bool:
    return all(
        t.device.type == "cpu" and t.is_contiguous() and not t.requires_grad for t in tensors
    )


def _check_pair(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    """The kernels' models and copies: [N, P] of one dtype, apart in memory (rows are written
    while others are read), contiguous on the CPU."""
    if x.dim() != 2 or x.shape != x_hat.shape or x.dtype != x_hat.dtype:
        raise ValueError(
            f"expected models and copies [N, P] of one dtype, got {tuple(x.shape)} {x.dtype} "
            f"and {tuple(x_hat.shape)} {x_hat.dtype}"
        )
    if not _plain(x, x_hat):
        raise ValueError("the kernels take contiguous CPU tensors outside autograd")
    if x.numel() and x.untyped_storage().data_ptr() == x_hat.untyped_storage().data_ptr():
        raise ValueError(
            "models and copies must not share memory: rows are written as others are read"
        )


def mix_rows(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    indptr: IntArray,
    senders: IntArray,
    weights: npt.NDArray[np.float64],
    *,
    gamma: float,
) -> None:
    """Mix every receiver row of ``x`` [N, P] in place (CPU, contiguous).

    Receiver i mixes the copies ``x_hat[senders[k]]`` with float64 ``weights[k]`` for k in
    ``indptr[i] .. indptr[i + 1]``, in that order: ``neighbour_sum`` then ``choco_update``,
    rounded once to ``x``'s dtype. A receiver with no terms is left as it was.

    >>> x = torch.tensor([[0.0], [3.0]])
    >>> mix_rows(x, x.clone(), np.array([0, 1, 1]), np.array([1]), np.array([0.5]), gamma=1.0)
    >>> x.flatten().tolist()
    [1.5, 3.0]
    """
    _check_pair(x, x_hat)
    if len(indptr) != x.shape[0] + 1:
        raise ValueError(f"expected N + 1 = {x.shape[0] + 1} row pointers, got {len(indptr)}")
    # compiled without bounds checks: an index out of range would read stray memory
    n = x.shape[0]
    if (
        indptr.dtype != np.int64
        or senders.dtype != np.int64
        or weights.dtype != np.float64  # a float32 sum of weights is not the daemon's
        or len(senders) != len(weights)
        or indptr[0] != 0
        or indptr[-1] != len(senders)
        or bool((np.diff(indptr) < 0).any())
        or (len(senders) > 0 and not 0 <= int(senders.min()) <= int(senders.max()) < n)
    ):
        raise ValueError(f"row pointers, senders or weights do not describe edges among {n} rows")
    mix, _ = _compiled()
    with _threads():
        mix(x.numpy(), x_hat.numpy(), indptr, senders, weights, float(gamma))


def publish_raw(x_hat: torch.Tensor, x: torch.Tensor) -> None:
    """The raw codec's step of every row, ``x_hat += (x - x_hat)``, in place and in x's dtype
    (the difference rounded, then the sum), in one pass.

    >>> x_hat = torch.tensor([[1.0, 2.0]])
    >>> publish_raw(x_hat, torch.tensor([[0.5, 4.0]]))
    >>> x_hat.tolist()
    [[0.5, 4.0]]
    """
    _check_pair(x, x_hat)
    _, publish = _compiled()
    with _threads():
        publish(x_hat.numpy(), x.numpy())
