"""Plug-ins for the tests: small modules and data functions, as a user would write them."""

from __future__ import annotations

import torch


def bnnet(
    inputs: int = 6, hidden: int = 8, classes: int = 3, dropout: float = 0.0, bias: bool = False
) -> torch.nn.Module:
    """Linear, BatchNorm, ReLU, dropout, Linear: parameters and BatchNorm buffers.

    No bias before the BatchNorm by default, as usual: its gradient is float noise around 0,
    which Adam's normalisation would turn into steps of size lr."""
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden, bias=bias),
        torch.nn.BatchNorm1d(hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(hidden, classes),
    )


def regressor(inputs: int = 6) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(inputs, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


Pair = tuple[torch.Tensor, torch.Tensor]


def blobs(
    peer: int, peers: int, seed: int, samples: int = 64, inputs: int = 6, classes: int = 3
) -> tuple[Pair, Pair]:
    """Gaussian blobs, a different mix per peer; (X, Y) tensor pairs."""
    g = torch.Generator().manual_seed(seed * 1000 + peer)
    centres = torch.randn(classes, inputs, generator=torch.Generator().manual_seed(seed)) * 2

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=g)
        return centres[y] + torch.randn(n, inputs, generator=g), y

    return draw(samples), draw(samples // 2)


def line(
    peer: int, peers: int, seed: int, samples: int = 64, inputs: int = 6
) -> tuple[torch.utils.data.Dataset[tuple[torch.Tensor, ...]], Pair]:
    """A linear regression target with noise; the train part as a torch Dataset of pairs."""
    g = torch.Generator().manual_seed(seed * 1000 + peer)
    w = torch.randn(inputs, generator=torch.Generator().manual_seed(seed))
    x = torch.randn(samples, inputs, generator=g)
    y = x @ w + 0.1 * torch.randn(samples, generator=g)
    train = torch.utils.data.TensorDataset(x[: samples // 2], y[: samples // 2])
    return train, (x[samples // 2 :], y[samples // 2 :])


def not_a_module() -> object:
    return "a string"


def nan_net(inputs: int = 6, classes: int = 3) -> torch.nn.Module:
    net = torch.nn.Linear(inputs, classes)
    with torch.no_grad():
        net.weight.fill_(float("nan"))
    return net


def raises(peer: int, peers: int, seed: int) -> object:
    raise RuntimeError("sensor offline")


def not_pairs(peer: int, peers: int, seed: int) -> object:
    return "train", "test"


def conv1d(channels: int = 3, classes: int = 6, width: int = 32) -> torch.nn.Module:
    """A small 1-D convolutional net with BatchNorm and dropout, for windows [C, T]."""
    return torch.nn.Sequential(
        torch.nn.Conv1d(channels, width, 5, padding=2, bias=False),
        torch.nn.BatchNorm1d(width),
        torch.nn.ReLU(),
        torch.nn.MaxPool1d(2),
        torch.nn.Conv1d(width, width, 5, padding=2, bias=False),
        torch.nn.BatchNorm1d(width),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(1),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(width, classes),
    )


def windows(
    peer: int, peers: int, seed: int, samples: int = 512, channels: int = 3, classes: int = 6
) -> tuple[Pair, Pair]:
    """Sine windows [C, 64] whose frequency is the class, plus noise."""
    g = torch.Generator().manual_seed(seed * 1000 + peer)

    def draw(n: int) -> Pair:
        y = torch.randint(0, classes, (n,), generator=g)
        t = torch.arange(64.0)
        phase = torch.rand(n, channels, 1, generator=g) * 6.28
        x = torch.sin((y.view(-1, 1, 1) + 1) * t * 0.1 + phase)
        return x + 0.3 * torch.randn(n, channels, 64, generator=g), y

    return draw(samples), draw(samples // 4)
