"""The device a simulation runs on (``--device cpu|cuda|auto``).

On ``cuda`` the peers' data, parameters, public copies, optimizer state, the mixer's index and
weight tensors and the per-round failure masks the engine reads all live on the GPU; a round
sends nothing back to the host except what is logged (the per-peer losses and the divergence
flag, one small copy each). Batch indices and codec randomness are drawn on the host as on
``cpu`` and copied up, so both devices train on the same samples; results agree with ``cpu``
to float tolerance, not bit for bit (GPU kernels sum in other orders).

Torch is imported only by :func:`resolve_device`: the CLI's parser checks names without it.

>>> check_device_name("cuda:1")
>>> check_device_name("tpu")
Traceback (most recent call last):
...
protocol.errors.ConfigError: unknown device 'tpu'; expected cpu, cuda, cuda:K or auto
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from protocol.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["check_device_name", "device_sync", "resolve_device"]

_NAME = re.compile(r"cpu|auto|cuda(:\d+)?")


def check_device_name(name: object) -> None:
    """ConfigError unless ``name`` is cpu, cuda, cuda:K or auto."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ConfigError(f"unknown device {name!r}; expected cpu, cuda, cuda:K or auto")


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: auto is cuda when one is available, else cpu.

    ConfigError (one line) for cuda on a machine without a usable CUDA device.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    check_device_name(name)
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if available else "cpu")
    if not available:
        raise ConfigError(
            f"--device {name}: no CUDA device is available to torch "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are available"
        )
    return device


def device_sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
