"""A small LeNet-style convolutional net for 28x28 grey images, on flat parameters.

conv 5x5 (1 -> 8) + ReLU + 2x2 max-pool, conv 5x5 (8 -> 16) + ReLU + 2x2 max-pool, then dense
256 -> 64 -> C. About 20,500 parameters for 10 classes. Batched over peers with
``torch.func.vmap`` of ``torch.func.grad_and_value`` (convolutions are not worth hand-writing
here); a single peer [P] runs through the same vmapped code with N = 1, so it matches a row of a
batched call.
"""

from __future__ import annotations

import math

import torch
from torch.func import grad_and_value, vmap
from torch.nn import functional as fn

from peer.tasks.layout import Layout, as_batch, param_count, uniform_init
from protocol.errors import ConfigError

__all__ = ["ConvNet"]

_SIDE = 28


class ConvNet:
    """LeNet-ish CNN over inputs of dimension 784 (28x28x1).

    >>> net = ConvNet(num_classes=10)
    >>> net.num_params, net.forward(net.init(seed=0), torch.zeros(2, 784)).shape
    (20522, torch.Size([2, 10]))
    """

    def __init__(self, *, num_classes: int, name: str = "cnn") -> None:
        if num_classes < 2:
            raise ConfigError(f"cnn needs >= 2 classes, got {num_classes}")
        self.name, self.num_classes, self.input_dim = name, num_classes, _SIDE * _SIDE
        self.layout: Layout = (
            ("conv1.weight", (8, 1, 5, 5), "float32"),
            ("conv1.bias", (8,), "float32"),
            ("conv2.weight", (16, 8, 5, 5), "float32"),
            ("conv2.bias", (16,), "float32"),
            ("fc1.weight", (64, 256), "float32"),
            ("fc1.bias", (64,), "float32"),
            ("fc2.weight", (num_classes, 64), "float32"),
            ("fc2.bias", (num_classes,), "float32"),
        )
        self.num_params = param_count(self.layout)
        self.activations_per_sample = 8 * 24 * 24 + 16 * 8 * 8 + 64 + num_classes

    def __repr__(self) -> str:
        return f"ConvNet({self.name!r}, classes={self.num_classes})"

    def init(self, *, seed: int) -> torch.Tensor:
        fan_ins = [25, 25, 200, 200, 256, 256, 64, 64]
        return uniform_init(self.layout, fan_ins, seed=seed)

    def _logits_one(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        views, start = [], 0
        for _, shape, _ in self.layout:
            views.append(p[start : start + math.prod(shape)].view(shape))
            start += math.prod(shape)
        w1, b1, w2, b2, w3, b3, w4, b4 = views
        h = fn.max_pool2d(fn.relu(fn.conv2d(x.view(-1, 1, _SIDE, _SIDE), w1, b1)), 2)
        h = fn.max_pool2d(fn.relu(fn.conv2d(h, w2, b2)), 2)
        return fn.linear(fn.relu(fn.linear(h.flatten(1), w3, b3)), w4, b4)

    def _loss_one(self, p: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return fn.cross_entropy(self._logits_one(p, x), y)

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits: [P] & [B, D] -> [B, C]; [N, P] & [N, B, D] -> [N, B, C]; [N, P] & [B, D]
        (inputs shared by all peers) -> [N, B, C]."""
        if params.dim() == 2 and x.dim() == 2:
            return vmap(self._logits_one, in_dims=(0, None))(params, x)
        p, xb, single = as_batch(params, x, self.num_params)
        z = vmap(self._logits_one)(p, xb)
        return z[0] if single else z

    def loss_and_grad(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        out: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and its gradient: per peer ([N], [N, P]) or for [P] (scalar, [P])."""
        p, xb, single = as_batch(params, x, self.num_params)
        yb = y.unsqueeze(0) if single else y
        grad, loss = vmap(grad_and_value(self._loss_one))(p, xb, yb)
        if out is not None:
            grad = out.copy_(grad[0] if single else grad)
            return (loss[0] if single else loss), grad
        return (loss[0], grad[0]) if single else (loss, grad)

    def sgd_step(
        self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor | float
    ) -> torch.Tensor:
        """One SGD step in place; ``lr`` a float or per peer [N]. Returns the loss before it."""
        loss, grad = self.loss_and_grad(params, x, y)
        if isinstance(lr, torch.Tensor):
            params.sub_(grad * (lr.view(-1, 1) if params.dim() == 2 else lr))
        else:
            params.sub_(grad, alpha=lr)
        return loss
