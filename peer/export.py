"""A peer's flat vector back into a module's own state dict, and into a ``.safetensors`` file.

The vector layout: the concatenation, in ``module.state_dict()`` order, of every
floating-point entry (parameters, and float buffers such as BatchNorm's running statistics),
each flattened row-major and cast to float32. Integer buffers (``num_batches_tracked``) are not
in the vector: they stay with the peer and are passed in separately.

The file is written by the ``safetensors`` package (no pickle), atomically: a temp file in the
same directory, flushed, fsynced and renamed over the target. So::

    module.load_state_dict(safetensors.torch.load_file(path))

gives back the peer's model.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
>>> vector_size(net)
7
>>> state = state_dict_from_vector(net, torch.arange(7.0))
>>> state["0.weight"].tolist(), state["1.running_var"].tolist(), int(state["1.num_batches_tracked"])
([[0.0, 1.0]], [6.0], 0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from peer.atomic import write_atomically
from protocol.errors import ConfigError, RumorError

__all__ = [
    "ExportError",
    "save_safetensors",
    "state_dict_from_vector",
    "vector_layout",
    "vector_size",
]


class ExportError(RumorError):
    """The model file cannot be written."""


def vector_size(module: nn.Module) -> int:
    """Scalars in ``module``'s flat vector: all its floating-point state entries."""
    return sum(t.numel() for t in module.state_dict().values() if t.is_floating_point())


def vector_layout(module: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, "float32") of each entry of the flat vector: what the wire fingerprint of
    the module's peers is computed from.

    >>> vector_layout(torch.nn.BatchNorm1d(2))[2:]
    [('running_mean', (2,), 'float32'), ('running_var', (2,), 'float32')]
    """
    state = module.state_dict().items()
    return [(name, tuple(t.shape), "float32") for name, t in state if t.is_floating_point()]


def _int_buffer(name: str, own: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
    if given is None:
        return own.detach().clone()
    if given.shape != own.shape or given.is_floating_point():
        raise ConfigError(
            f"integer buffer {name!r}: got {given.dtype} {tuple(given.shape)}, "
            f"the module has {own.dtype} {tuple(own.shape)}"
        )
    return given.detach().to(own.dtype).clone()


def state_dict_from_vector(
    module: nn.Module,
    vector: torch.Tensor,
    int_buffers: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """``module``'s state dict with the values of the flat ``vector`` (see the module docstring).

    Floating-point entries come from the vector, cast to the module's own dtype; integer buffers
    from ``int_buffers`` where given, else the module's current values. Every tensor is a fresh
    contiguous CPU copy (none shares memory with ``vector`` or another entry).
    ConfigError if the vector's length does not fit the module, or ``int_buffers`` names an
    entry that is not one of its integer buffers.
    """
    state = module.state_dict()
    size = vector_size(module)
    if vector.dim() != 1 or vector.numel() != size:
        raise ConfigError(
            f"the flat vector has shape {tuple(vector.shape)}; this module's floating-point "
            f"state has {size} values (a vector of another model?)"
        )
    given = dict(int_buffers or {})
    unknown = sorted(set(given) - {k for k, t in state.items() if not t.is_floating_point()})
    if unknown:
        raise ConfigError(f"int_buffers name(s) {', '.join(unknown)}: not integer buffers")
    flat = vector.detach().cpu()
    out: dict[str, torch.Tensor] = {}
    start = 0
    for name, own in state.items():
        if not own.is_floating_point():
            out[name] = _int_buffer(name, own.cpu(), given.get(name))
            continue
        count = math.prod(own.shape)
        part = flat[start : start + count].reshape(own.shape)
        out[name] = part.to(own.dtype).clone().contiguous()
        start += count
    return out


def save_safetensors(
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``state`` to ``path`` in the safetensors format, atomically; returns the path."""
    from safetensors.torch import save  # imported here: only export needs it

    final = Path(path)
    tensors = {name: t.detach().cpu().contiguous() for name, t in state.items()}
    try:
        data = save(tensors, metadata=dict(metadata) if metadata else None)
    except (ValueError, RuntimeError) as exc:
        raise ExportError(f"cannot encode the model for {final}: {exc}") from exc
    try:
        write_atomically(final, data, tmp_prefix=f".{final.name}.")
    except OSError as exc:
        raise ExportError(f"cannot write {final}: {exc}") from exc
    return final
