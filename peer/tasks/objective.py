"""What training minimises (the loss) and what evaluation reports (the metric).

Losses: ``cross_entropy`` (outputs [B, C] against int64 labels [B]), ``mse`` (outputs against
float targets of the same number of elements per sample), or a plug-in
``package.module:function[:key=value,...]`` called as ``loss(outputs, targets) -> scalar`` (the
mean over the batch, differentiable).

Metrics: ``accuracy`` (higher is better), ``mse`` (lower is better), or a plug-in called as
``metric(outputs, targets) -> scalar`` (the mean over the batch; evaluation weights batches by
their size). A plug-in metric is taken as higher-is-better unless its function has the attribute
``higher_is_better = False``.

>>> mse = loss_from_spec("mse")
>>> float(mse.fn(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 3.0])))
0.5
>>> m = metric_from_spec("accuracy")
>>> m.name, m.higher_is_better, float(m.fn(torch.tensor([[0.1, 0.9]]), torch.tensor([1])))
('accuracy', True, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import torch
from torch.nn import functional as fn

from peer.tasks.plugin import LOSSES, METRICS, PluginError, is_plugin, parse_plugin
from protocol.errors import ConfigError

__all__ = ["LOSSES", "METRICS", "Loss", "Metric", "loss_from_spec", "metric_from_spec"]

Objective: TypeAlias = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _matched(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``out`` reshaped to ``target``'s shape when they hold as many elements (so [B, 1]
    outputs meet [B] targets), else unchanged (mse then raises on the mismatch)."""
    return out.reshape(target.shape) if out.numel() == target.numel() else out


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    out = _matched(out, target)
    if out.shape != target.shape:
        raise ConfigError(
            f"mse: outputs of shape {tuple(out.shape)} do not fit targets {tuple(target.shape)}"
        )
    return fn.mse_loss(out, target.to(out.dtype))


def _cross_entropy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return fn.cross_entropy(out, target)


def _accuracy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out.argmax(-1) == target).to(torch.float64).mean()


@dataclass(frozen=True)
class Loss:
    name: str
    fn: Objective


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Objective
    higher_is_better: bool


def _plugin(text: str, role: str) -> tuple[str, Objective, bool]:
    ref = parse_plugin(text, role)
    func = ref.load(role)
    kwargs = dict(ref.kwargs)

    def call(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = func(out, target, **kwargs)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise PluginError(f"{role} {str(ref)!r} must return a scalar tensor, got {value!r}")
        return value.reshape(())

    return str(ref), call, bool(getattr(func, "higher_is_better", True))


def loss_from_spec(text: str) -> Loss:
    """``cross_entropy``, ``mse`` or a plug-in (see the module docstring)."""
    if text == "cross_entropy":
        return Loss(text, _cross_entropy)
    if text == "mse":
        return Loss(text, _mse)
    if is_plugin(text):
        name, call, _ = _plugin(text, "loss")
        return Loss(name, call)
    raise ConfigError(
        f"unknown loss {text!r}; expected cross_entropy, mse or package.module:function"
    )


def metric_from_spec(text: str) -> Metric:
    """``accuracy``, ``mse`` or a plug-in (see the module docstring)."""
    if text == "accuracy":
        return Metric(text, _accuracy, True)
    if text == "mse":
        return Metric(text, _mse, False)
    if is_plugin(text):
        return Metric(*_plugin(text, "metric"))
    raise ConfigError(f"unknown metric {text!r}; expected accuracy, mse or package.module:function")
