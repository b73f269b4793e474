"""Human activity recognition from a wrist accelerometer, on synthetic data made in code.

Each sample is a 2-second window of a 3-axis accelerometer sampled at 32 Hz (``[3, 64]``, in
units of g), labelled with one of six activities:

====  ==========  =================================================================
  0   walking     ~1.9 Hz gait, moderate, mostly vertical, with a second harmonic
  1   running     ~2.8 Hz gait, strong, vertical and forward
  2   upstairs    ~1.6 Hz gait, moderate, vertical and forward, slower and lopsided
  3   sitting     still; the wrist tilted ~35 degrees forward
  4   standing    still; the wrist upright
  5   lying       still; the wrist on its side
====  ==========  =================================================================

Every window gets a random wrist rotation (up to ~25 degrees), gain and offset errors of the
sensor, frequency and phase jitter and white noise, so gait classes overlap in frequency and
still classes in orientation: the task is learnable (a centralised model reaches ~0.97 test
accuracy) but not trivial.

The devices hold skewed data: ``data`` draws one pool of ``samples * peers`` labels from
``seed`` and gives each peer its Dirichlet(``alpha``) share of them (small ``alpha``, few
activities per peer; 0.5 by default). Every peer is tested on the same balanced test set, so
the mean peer accuracy measures how well gossip spread what each device learned.

The model, ``net``, is a small 1-D convolutional net with BatchNorm and dropout (~6,800
parameters), meant for Adam.

Run it from the repository root (the working directory is on the import path)::

    rumor sim --model examples.har:net --data examples.har:data --loss cross_entropy \\
        --metric accuracy --optimizer adam --lr 0.003 --peers 16 --topology torus \\
        --rounds 60 --local-steps 5 --batch-size 32      # mean peer accuracy ~0.90

    rumor up --model examples.har:net --data examples.har:data --loss cross_entropy \\
        --metric accuracy --optimizer adam --lr 0.003 --peers 4 --topology ring \\
        --rounds 40 --local-steps 5 --batch-size 32 --out runs/har

    rumor export runs/har/p0 --out har.safetensors   # also in runs/har/p0/model.safetensors

and use the result::

    import safetensors.torch
    from examples.har import net
    model = net()
    model.load_state_dict(safetensors.torch.load_file("har.safetensors"))

>>> (x, y), (xt, yt) = data(0, 4, seed=0)
>>> tuple(x.shape[1:]), x.dtype, y.dtype, tuple(xt.shape)
((3, 64), torch.float32, torch.int64, (1200, 3, 64))
>>> net()(x[:5]).shape
torch.Size([5, 6])
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from peer.tasks.partition import partition

__all__ = ["ACTIVITIES", "RATE_HZ", "WINDOW", "data", "generate", "net"]

ACTIVITIES: Final = ("walking", "running", "upstairs", "sitting", "standing", "lying")
RATE_HZ: Final = 32
WINDOW: Final = 64

_Floats = npt.NDArray[np.float64]
_TEST_PER_CLASS: Final = 200
_CHUNK: Final = 128

# Per activity: gait frequency range (Hz, 0 = still), amplitude (g) along (x, y, z), share of
# the second harmonic, and the wrist's gravity direction before the random rotation.
_GAIT: Final = {
    0: ((1.6, 2.2), (0.15, 0.10, 0.35), 0.45),
    1: ((2.3, 3.3), (0.45, 0.20, 0.90), 0.30),
    2: ((1.3, 1.9), (0.30, 0.12, 0.30), 0.70),
}
_GRAVITY: Final = {
    0: (0.0, 0.0, 1.0),
    1: (0.0, 0.0, 1.0),
    2: (0.25, 0.0, 0.97),
    3: (0.57, 0.0, 0.82),
    4: (0.0, 0.0, 1.0),
    5: (0.0, 0.96, 0.28),
}


def _rotations(rng: np.random.Generator, count: int, max_deg: float) -> _Floats:
    """``count`` random rotation matrices [count, 3, 3], each by an angle up to ``max_deg``
    about a random axis (Rodrigues' formula)."""
    axis = rng.normal(size=(count, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.radians(max_deg) * rng.uniform(size=(count, 1, 1))
    zero = np.zeros(count)
    a0, a1, a2 = axis.T
    k = np.stack([zero, -a2, a1, a2, zero, -a0, -a1, a0, zero], axis=1).reshape(count, 3, 3)
    rotations: _Floats = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)
    return rotations


def _motion(labels: npt.NDArray[np.int64], rng: np.random.Generator) -> _Floats:
    """The body's motion [M, 3, WINDOW] for each label: gait waves, or slow fidgeting."""
    m = labels.size
    t = np.arange(WINDOW) / RATE_HZ
    motion = 0.05 * np.sin(2 * math.pi * rng.uniform(0.1, 0.5, size=(m, 3, 1)) * t)
    freq, phase = rng.uniform(size=(m, 1, 1)), rng.uniform(0, 2 * math.pi, size=(m, 3, 1))
    gain, skew = rng.uniform(0.7, 1.3, size=(m, 3, 1)), rng.uniform(-0.5, 0.5, size=(m, 3, 1))
    for label, ((lo, hi), amps, harmonic) in _GAIT.items():
        rows = labels == label
        f = lo + (hi - lo) * freq[rows]
        wave = np.sin(2 * math.pi * f * t + phase[rows])
        wave += harmonic * np.sin(4 * math.pi * f * t + 2 * phase[rows] + skew[rows])
        motion[rows] = np.array(amps)[:, None] * gain[rows] * wave
    return motion


def _windows(labels: npt.NDArray[np.int64], rng: np.random.Generator) -> torch.Tensor:
    m = labels.size
    gravity = np.array([_GRAVITY[c] for c in range(len(ACTIVITIES))])[labels][:, :, None]
    signal = _rotations(rng, m, 25.0) @ (_motion(labels, rng) + gravity)
    signal *= rng.uniform(0.9, 1.1, size=(m, 3, 1))
    signal += rng.normal(0.0, 0.05, size=(m, 3, 1)) + rng.normal(0.0, 0.12, size=(m, 3, WINDOW))
    return torch.from_numpy(signal.astype(np.float32))


def generate(labels: npt.NDArray[np.int64], *, seed: int | tuple[int, ...]) -> torch.Tensor:
    """Windows [M, 3, WINDOW] (float32) of the given activities, reproducible by ``seed``:
    motion plus gravity, seen through a randomly rotated, miscalibrated, noisy sensor.
    Made ``_CHUNK`` at a time, so the float64 working arrays stay small on a device.

    >>> generate(np.array([0, 3]), seed=1).shape
    torch.Size([2, 3, 64])
    """
    rng = np.random.default_rng(seed)
    out = torch.empty(labels.size, 3, WINDOW)
    for start in range(0, labels.size, _CHUNK):
        out[start : start + _CHUNK] = _windows(labels[start : start + _CHUNK], rng)
    return out


def _pool_labels(count: int, *, seed: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, 1])
    return torch.from_numpy(rng.integers(0, len(ACTIVITIES), size=count).astype(np.int64))


def _test_set(*, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = np.repeat(np.arange(len(ACTIVITIES), dtype=np.int64), _TEST_PER_CLASS)
    return generate(labels, seed=(seed, 2)), torch.from_numpy(labels)


def data(
    peer: int, peers: int, seed: int, *, samples: int = 300, alpha: float = 0.5
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Peer ``peer``'s training windows (``samples`` of them, Dirichlet(``alpha``) label skew)
    and the balanced test set shared by all peers: ``((X, Y), (X_test, Y_test))``.

    Only this peer's windows are made (from its own random stream), so a device's memory does
    not grow with the number of peers."""
    if not 0 <= peer < peers:
        raise ValueError(f"peer={peer}: expected 0 <= peer < peers={peers}")
    if samples < 1 or alpha <= 0:
        raise ValueError(f"need samples >= 1 and alpha > 0, got samples={samples}, alpha={alpha}")
    labels = _pool_labels(samples * peers, seed=seed)
    mine = labels[partition(labels, peers, f"dirichlet:alpha={alpha}", seed=seed)[peer]]
    return (generate(mine.numpy(), seed=(seed, 1, peer)), mine), _test_set(seed=seed)


def net(*, channels: int = 3, classes: int = len(ACTIVITIES), width: int = 24) -> nn.Module:
    """Conv1d-BatchNorm-ReLU twice with pooling, global average pooling, dropout, linear.

    >>> sum(p.numel() for p in net().parameters())
    6774
    """
    return nn.Sequential(
        nn.Conv1d(channels, width, kernel_size=7, padding=3),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(width, 2 * width, kernel_size=5, padding=2),
        nn.BatchNorm1d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(2 * width, classes),
    )
