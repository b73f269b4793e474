"""How a model is trained and judged: loss, metric and optimizer, and the check of a plug-in
model against its data before any round.

>>> r = Recipe.from_specs(optimizer="adam", lr=0.01)
>>> r.loss.name, r.metric.name, r.optimizer.kind, r.fast
('cross_entropy', 'accuracy', 'adam', False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from peer.tasks.dataset import Dataset
from peer.tasks.models import FlatModel
from peer.tasks.module import ModuleModel
from peer.tasks.objective import Loss, Metric, loss_from_spec, metric_from_spec
from peer.tasks.optim import Optimizer, optimizer_from_spec
from peer.tasks.plugin import PluginError
from protocol.errors import ConfigError

__all__ = ["Recipe", "check_model"]

_PROBE = 8
"""Samples the pre-flight check runs through a plug-in model."""


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Loss, metric and optimizer (with its learning rate)."""

    loss: Loss = field(default_factory=lambda: loss_from_spec("cross_entropy"))
    metric: Metric = field(default_factory=lambda: metric_from_spec("accuracy"))
    optimizer: Optimizer = field(default_factory=lambda: optimizer_from_spec("sgd", lr=0.05))

    @classmethod
    def from_specs(
        cls,
        *,
        loss: str = "cross_entropy",
        metric: str = "accuracy",
        optimizer: str = "sgd",
        lr: float = 0.05,
    ) -> Recipe:
        return cls(
            loss=loss_from_spec(loss),
            metric=metric_from_spec(metric),
            optimizer=optimizer_from_spec(optimizer, lr=lr),
        )

    @property
    def fast(self) -> bool:
        """Plain SGD on cross-entropy: a built-in model's fused hand-written step applies."""
        return self.optimizer.plain_sgd and self.loss.name == "cross_entropy"

    @property
    def classic(self) -> bool:
        """Cross-entropy and accuracy: a built-in model's fused evaluation applies."""
        return self.loss.name == "cross_entropy" and self.metric.name == "accuracy"


def check_model(model: FlatModel | ModuleModel, data: Dataset, recipe: Recipe) -> None:
    """Run a few samples through ``model`` as training and evaluation will: PluginError naming
    the plug-in if its outputs do not fit the targets or the loss is not finite. A module's
    activations per sample are measured on them (for sizing evaluation chunks)."""
    if not isinstance(model, ModuleModel):
        if recipe.loss.name != "cross_entropy":
            raise ConfigError(
                f"built-in model {model.name!r} trains with cross_entropy only, not "
                f"{recipe.loss.name!r}; use a model plug-in for another loss"
            )
        if data.regression:
            raise ConfigError(f"built-in model {model.name!r} needs class labels, not targets")
        return
    x, y = data.x[:_PROBE], data.y[:_PROBE]
    start = model.init(seed=model.seed)
    local = {name: tensor.clone() for name, tensor in model.local.items()}
    try:
        value, _ = model.loss_and_grad_one(start.clone(), x, y, recipe.loss.fn)
        metric = recipe.metric.fn(model.forward(start, x), y)
    except PluginError:
        raise
    except Exception as exc:
        out = _output_shape(model, start, x)
        raise PluginError(
            f"model {model.name!r}: outputs {out} do not fit targets {tuple(y.shape)} "
            f"{str(y.dtype).removeprefix('torch.')} under loss {recipe.loss.name!r} and "
            f"metric {recipe.metric.name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    if not math.isfinite(float(value)) or not math.isfinite(float(metric)):
        raise PluginError(
            f"model {model.name!r}: the {recipe.loss.name} loss at the first step is "
            f"{float(value)} (metric {float(metric)}); expected finite values"
        )
    model.load(start)  # leave the module as built
    model.measure_activations(x)
    for name, tensor in local.items():
        model.local[name].copy_(tensor)


def _output_shape(model: ModuleModel, start: torch.Tensor, x: torch.Tensor) -> str:
    try:
        return str(tuple(model.forward(start, x).shape))
    except Exception as exc:
        return f"(none: the forward pass fails with {type(exc).__name__}: {exc})"
