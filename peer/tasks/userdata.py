"""User data plug-ins: ``data(peer, peers, seed) -> (train, test)``, one call per peer.

``--data package.module:function[:key=value,...]`` (config ``learning.data``) names a function
called as ``function(peer, peers, seed, **kwargs)``. It returns this peer's ``(train, test)``,
each either a pair of tensors ``(X, Y)`` (NumPy arrays are accepted too) or a
``torch.utils.data.Dataset`` of ``(x, y)`` pairs, which is read once into tensors. ``X`` holds
float samples of any shape [M, ...]; ``Y`` holds integer class labels [M] (classification) or
float targets [M, ...] (regression). The simulator calls it once per peer, ``peer`` from 0 to
``peers - 1``; a daemon calls it once, with its own partition index, and on a device the function
may ignore ``peer`` and ``peers`` and read local files.

Evaluation: peer ``i``'s model is evaluated on the test set that ITS call returned, in the
simulator and in a daemon alike; the simulator evaluates the average model on all peers' test
sets together.

``npz:path=FILE`` is the built-in loader for devices (arrays ``x_train``, ``y_train``,
``x_test``, ``y_test`` in one ``.npz`` file), implemented in :mod:`peer.tasks.npz`.
"""

from __future__ import annotations

import numpy as np
import torch

from peer.tasks.dataset import Dataset
from peer.tasks.plugin import NPZ_LOADER, DataRef, PluginError, data_ref
from protocol.errors import ConfigError

__all__ = ["NPZ_LOADER", "DataRef", "data_ref", "load_peer_data", "with_classes"]


def _tensors(part: object, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(part, tuple | list) and len(part) == 2:
        try:
            return torch.as_tensor(np.asarray(part[0])), torch.as_tensor(np.asarray(part[1]))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{what}: (X, Y) are not arrays ({exc})") from exc
    if isinstance(part, torch.utils.data.Dataset) and hasattr(part, "__len__"):
        items = [part[i] for i in range(len(part))]
        if not items or not all(isinstance(i, tuple | list) and len(i) == 2 for i in items):
            raise ConfigError(f"{what}: a Dataset must yield (x, y) pairs and not be empty")
        xs = torch.stack([torch.as_tensor(x) for x, _ in items])
        ys = torch.stack([torch.as_tensor(y) for _, y in items])
        return xs, ys
    raise ConfigError(
        f"{what}: expected a pair of tensors (X, Y) or a torch Dataset of (x, y) pairs, "
        f"got {type(part).__name__}"
    )


def _dataset(part: object, what: str, num_classes: int | None) -> Dataset:
    x, y = _tensors(part, what)
    if x.dim() == 1:
        x = x.unsqueeze(1)  # one feature per sample
    if len(x) == 0 or len(x) != len(y):
        raise ConfigError(f"{what}: {len(x)} samples with {len(y)} labels; expected equal, >= 1")
    if not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.uint8)):
        raise ConfigError(f"{what}: X has dtype {x.dtype}; expected numbers")
    x = x.to(torch.float32)
    if y.is_floating_point():
        return Dataset(x, y.to(torch.float32), 0)
    if y.dtype == torch.bool or y.dim() != 1 or bool((y < 0).any()):
        raise ConfigError(f"{what}: Y must be class labels >= 0 [M] or float targets")
    y = y.to(torch.int64)
    classes = max(2, int(y.max()) + 1) if num_classes is None else num_classes
    if int(y.max()) >= classes:
        raise ConfigError(f"{what}: label {int(y.max())} >= {classes} classes")
    return Dataset(x, y, classes)


def load_peer_data(
    ref: DataRef, *, peer: int, peers: int, seed: int, num_classes: int | None = None
) -> tuple[Dataset, Dataset]:
    """Call the plug-in for ``peer`` and check what it returns (PluginError naming it)."""
    result = ref.call(peer, peers, seed, role="data")
    what = f"data {str(ref)!r} for peer {peer}"
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise PluginError(f"{what}: expected (train, test), got {type(result).__name__}")
    try:
        train = _dataset(result[0], f"{what}, train", num_classes)
        test = _dataset(result[1], f"{what}, test", num_classes)
    except PluginError:
        raise
    except ConfigError as exc:
        raise PluginError(str(exc)) from exc
    if train.regression != test.regression or train.x.shape[1:] != test.x.shape[1:]:
        raise PluginError(f"{what}: train and test differ in sample shape or label kind")
    return with_classes(train, test.num_classes), with_classes(test, train.num_classes)


def with_classes(data: Dataset, classes: int) -> Dataset:
    """``data`` declaring at least ``classes`` classes (unchanged for regression).

    >>> with_classes(Dataset(torch.zeros(1, 1), torch.tensor([0]), 2), 5).num_classes
    5
    """
    if data.regression or data.num_classes >= classes:
        return data
    return Dataset(data.x, data.y, classes)
