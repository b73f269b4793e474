"""``torch.nn`` equivalents of the built-in flat models, for export and for users' own code.

Their ``state_dict`` names and order are the flat model's layout, and their forward pass
computes the same logits, so a built-in peer's vector loads into them (see ``peer.export``).

>>> from peer.tasks.models import model_from_spec
>>> flat = model_from_spec("mlp:hidden=8", 5, 3)
>>> module = torch_module(flat)
>>> [name for name, _ in module.state_dict().items()] == [n for n, _, _ in flat.layout]
True
"""

from __future__ import annotations

import torch
from torch import nn

from peer.tasks.cnn import ConvNet
from peer.tasks.dense import DenseNet
from peer.tasks.models import FlatModel
from protocol.errors import ConfigError

__all__ = ["DenseModule", "LeNetModule", "torch_module"]


class DenseModule(nn.Module):
    """``fc1 -> ReLU -> fc2 -> ... -> fcK``: the built-in ``logreg`` and ``mlp``."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.depth = len(sizes) - 1
        for i in range(self.depth):
            self.add_module(f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for i in range(1, self.depth + 1):
            h = getattr(self, f"fc{i}")(h)
            if i < self.depth:
                h = torch.relu(h)
        return h


class LeNetModule(nn.Module):
    """The built-in ``cnn`` for 28x28 grey images (flattened to 784 or not)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.fc1 = nn.Linear(256, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.max_pool2d(torch.relu(self.conv1(x.reshape(-1, 1, 28, 28))), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        logits: torch.Tensor = self.fc2(torch.relu(self.fc1(h.flatten(1))))
        return logits


def torch_module(model: FlatModel) -> nn.Module:
    """A fresh ``nn.Module`` equivalent to the built-in ``model``."""
    if isinstance(model, DenseNet):
        return DenseModule(model.sizes)
    if isinstance(model, ConvNet):
        return LeNetModule(model.num_classes)
    raise ConfigError(f"model {model.name!r} has no torch.nn equivalent here")
