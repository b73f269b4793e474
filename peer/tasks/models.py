"""Models on flat parameter vectors: the :class:`FlatModel` seam, and ``model_from_spec``.

Every model works on a flat float vector, [P] for one peer or [N, P] for a batch of peers, so the
same parameters travel through codecs, mixing and the wire. Available: ``logreg`` (D -> C),
``mlp`` / ``mlp:hidden=H`` (D -> H -> C, ReLU; H = 64 by default), ``cnn`` (LeNet-style, for
28x28 inputs). ``layout`` gives the names, shapes and dtypes behind the wire fingerprint; the names
follow ``torch.nn`` so a flat vector can be loaded into an equivalent module.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from peer.tasks.cnn import ConvNet
from peer.tasks.dense import DenseNet
from peer.tasks.layout import Layout
from peer.tasks.specs import check_model_spec
from protocol.errors import ConfigError
from protocol.spec import Spec

__all__ = ["ConvNet", "DenseNet", "FlatModel", "model_from_spec"]


@runtime_checkable
class FlatModel(Protocol):
    """A classifier whose parameters are one flat vector."""

    name: str
    layout: Layout
    num_params: int
    input_dim: int
    num_classes: int
    activations_per_sample: int
    """Floats of activations per input sample in a forward pass (sizes evaluation chunks)."""

    def init(self, *, seed: int) -> torch.Tensor:
        """Deterministic float32 initial parameters [P]."""
        ...

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits: [P] & [B, D] -> [B, C]; [N, P] & [N, B, D] or [B, D] -> [N, B, C]."""
        ...

    def loss_and_grad(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        out: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and gradient, per peer ([N], [N, P]) or single (scalar, [P])."""
        ...

    def sgd_step(
        self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor | float
    ) -> torch.Tensor:
        """One SGD step in place; ``lr`` a float or per peer [N]; returns the loss before it."""
        ...


def model_from_spec(spec: str | Spec, input_dim: int, num_classes: int) -> FlatModel:
    """Build ``logreg``, ``mlp[:hidden=H]`` or ``cnn`` for the given input and class counts.

    >>> model_from_spec("mlp:hidden=32", 784, 10).num_params
    25450
    >>> model_from_spec("logreg", 60, 10).layout[0]
    ('fc1.weight', (10, 60), 'float32')
    """
    spec = check_model_spec(spec)
    if input_dim < 1 or num_classes < 2:
        raise ConfigError(f"need input_dim >= 1 and >= 2 classes, got {input_dim}, {num_classes}")
    if spec.name == "logreg":
        return DenseNet((input_dim, num_classes), name=str(spec))
    if spec.name == "mlp":
        hidden = int(spec.params.get("hidden", 64))
        return DenseNet((input_dim, hidden, num_classes), name=str(spec))
    if input_dim != 28 * 28:  # cnn
        raise ConfigError(f"cnn expects 28x28 inputs (dimension 784), got dimension {input_dim}")
    return ConvNet(num_classes=num_classes, name=str(spec))
