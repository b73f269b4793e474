"""Forecasting a sensor's next reading from its last day of readings: a regression with MSE.

Each peer is one room's temperature sensor, read hourly. A reading is the room's own level
(offset), a daily cycle of the room's own amplitude and phase, a slow weekly drift and
autocorrelated noise, all in standardised units ((degrees C - 20) / 5). A sample is the last
``window`` readings (input ``[window]``) and the next reading (target ``[1]``).

``data`` gives peer ``peer`` the first 80% of its own sensor's series for training, and every
peer the same test set: the last 20% of ALL sensors' series (later in time than any training
window), so a peer's model is judged on rooms it never saw. The reference to beat is predicting
the mean of the training targets: a useful model has a test MSE at most half of that.

``net`` is a small MLP (``window`` -> ``hidden`` -> 1), meant for Adam.

Run it from the repository root (the working directory is on the import path)::

    rumor sim --model examples.forecast:net --data examples.forecast:data --loss mse \\
        --metric mse --optimizer adam --lr 0.005 --peers 16 --topology torus \\
        --rounds 40 --local-steps 5 --batch-size 32      # test MSE ~0.024 (the mean: ~0.93)

    rumor up --model examples.forecast:net --data examples.forecast:data --loss mse \\
        --metric mse --optimizer adam --lr 0.005 --peers 4 --topology ring \\
        --rounds 30 --local-steps 5 --batch-size 32 --out runs/forecast

>>> (x, y), (xt, yt) = data(0, 4, seed=0)
>>> tuple(x.shape), tuple(y.shape), tuple(xt.shape), x.dtype
((456, 24), (456, 1), (480, 24), torch.float32)
>>> net()(x).shape
torch.Size([456, 1])
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["HOURS", "data", "net", "series"]

HOURS: Final = 600
"""Readings per sensor: 25 days, hourly."""
_TRAIN_SHARE: Final = 0.8

_Floats = npt.NDArray[np.float64]


def series(sensor: int, *, seed: int, hours: int = HOURS) -> _Floats:
    """Sensor ``sensor``'s readings [hours], reproducible by (``seed``, ``sensor``).

    >>> s = series(3, seed=0)
    >>> s.shape, bool(np.allclose(s, series(3, seed=0)))
    ((600,), True)
    """
    rng = np.random.default_rng([seed, sensor])
    t = np.arange(hours)
    offset = rng.uniform(-1.5, 1.5)
    daily = rng.uniform(0.4, 1.2) * np.sin(2 * math.pi * t / 24 + rng.uniform(0, 2 * math.pi))
    weekly = rng.uniform(0.1, 0.4) * np.sin(2 * math.pi * t / 168 + rng.uniform(0, 2 * math.pi))
    noise = np.zeros(hours)
    shocks = rng.normal(0.0, 0.12, size=hours)
    for i in range(1, hours):
        noise[i] = 0.8 * noise[i - 1] + shocks[i]
    return np.asarray(offset + daily + weekly + noise)


def _windows(readings: _Floats, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs [M, window] and next readings [M, 1] of every window in ``readings``."""
    x = np.lib.stride_tricks.sliding_window_view(readings[:-1], window)
    y = readings[window:, None]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _split(readings: _Floats, window: int) -> tuple[_Floats, _Floats]:
    cut = int(len(readings) * _TRAIN_SHARE)
    return readings[:cut], readings[cut - window :]  # the test part starts with a full window


def data(
    peer: int, peers: int, seed: int, *, window: int = 24
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Peer ``peer``'s training windows ``(X, Y)`` and the test windows of all ``peers`` sensors:
    ``((X, Y), (X_test, Y_test))``."""
    if not 0 <= peer < peers:
        raise ValueError(f"peer={peer}: expected 0 <= peer < peers={peers}")
    if not 1 <= window < HOURS // 10:
        raise ValueError(f"window={window}: expected 1 <= window < {HOURS // 10}")
    train, _ = _split(series(peer, seed=seed), window)
    tests = [_windows(_split(series(s, seed=seed), window)[1], window) for s in range(peers)]
    x_test = torch.cat([x for x, _ in tests])
    y_test = torch.cat([y for _, y in tests])
    return _windows(train, window), (x_test, y_test)


def net(*, window: int = 24, hidden: int = 32) -> nn.Module:
    """An MLP from the last ``window`` readings to the next one.

    >>> sum(p.numel() for p in net().parameters())
    833
    """
    return nn.Sequential(nn.Linear(window, hidden), nn.ReLU(), nn.Linear(hidden, 1))
