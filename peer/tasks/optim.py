"""Optimizers as pure elementwise functions on flat vectors, [P] for one peer or [N, P] for many.

``sgd[:momentum=M,weight_decay=W]``, ``adam[:beta1=B1,beta2=B2,eps=E,weight_decay=W]`` and
``adamw[:...]`` (weight_decay default 0.01) follow the formulas of ``torch.optim.SGD``, ``Adam``
and ``AdamW`` with their defaults (no dampening, no Nesterov, no AMSGrad); a test checks them
against torch.optim. Their state is plain tensors of the parameters' shape (``momentum``;
``exp_avg`` and ``exp_avg_sq``) plus ``step``, the steps taken per row ([N] or a scalar, float64),
so a vector engine, a loop engine and a daemon share it, and a checkpoint stores it as it is.

``mask`` (bool [P]) marks the entries the optimizer may change: a module's floating-point
buffers (BatchNorm running statistics) travel in the same vector but are not trained.
``active`` (float [N] of 0/1) freezes rows that take no step (stragglers): their parameters and
state stay exactly as they were.

>>> opt = optimizer_from_spec("sgd:momentum=0.9", lr=0.1)
>>> p = torch.tensor([1.0]); state = opt.init_state(p)
>>> opt.step(p, torch.tensor([1.0]), state); opt.step(p, torch.tensor([1.0]), state)
>>> round(float(p), 6), float(state["step"])
(0.71, 2.0)
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import torch

from protocol.errors import ConfigError
from protocol.spec import Spec, parse_spec

__all__ = ["OPTIMIZERS", "GradPiece", "OptState", "Optimizer", "optimizer_from_spec"]

OPTIMIZERS = ("sgd", "adam", "adamw")
OptState: TypeAlias = MutableMapping[str, torch.Tensor]
"""Named state tensors: ``step`` ([N] or scalar) and the per-entry moments ([N, P] or [P])."""
GradPiece: TypeAlias = tuple[int, int, torch.Tensor]
"""(start, stop, gradient of entries start:stop): a gradient given layer by layer."""


@dataclass(frozen=True, kw_only=True)
class Optimizer:
    """One optimizer with its hyperparameters; ``spec`` is the text it was built from."""

    kind: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    spec: str = "sgd"

    @property
    def plain_sgd(self) -> bool:
        """Stateless SGD: the models' fused hand-written step applies."""
        return self.kind == "sgd" and self.momentum == 0 and self.weight_decay == 0

    def state_names(self) -> tuple[str, ...]:
        if self.kind == "sgd":
            return ("momentum",) if self.momentum else ()
        return ("exp_avg", "exp_avg_sq")

    def init_state(self, params: torch.Tensor) -> OptState:
        """Zero state for ``params`` [P] or [N, P]."""
        rows = params.shape[:-1]
        state: OptState = {"step": torch.zeros(rows, dtype=torch.float64, device=params.device)}
        for name in self.state_names():
            state[name] = torch.zeros_like(params)
        return state

    def step(
        self,
        params: torch.Tensor,
        grad: torch.Tensor,
        state: OptState,
        *,
        active: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        """One step in place on ``params`` and ``state``; ``grad`` is not modified."""
        if active is not None and not bool(active.all()):
            rows = torch.nonzero(active).flatten()
            sub = {k: v[rows] for k, v in state.items()}
            p = params[rows]
            self.step(p, grad[rows], sub, mask=mask)
            params[rows] = p
            for k, v in sub.items():
                state[k][rows] = v
            return
        old = params.clone() if mask is not None and not bool(mask.all()) else None
        self.step_pieces(params, [(0, params.shape[-1], grad)], state)
        if old is not None and mask is not None:
            torch.where(mask, params, old, out=params)

    def step_pieces(
        self, params: torch.Tensor, pieces: Sequence[GradPiece], state: OptState
    ) -> None:
        """One step of every row of ``params``, given the gradient as pieces ``(start, stop,
        grad)``: entries ``start:stop`` of the last dimension, and the gradient there. Entries
        in no piece (a module's buffers) are left alone. The update is elementwise, so a piece
        gets exactly what a whole-vector step would give it."""
        state["step"] += 1
        for start, stop, grad in pieces:
            part = {k: v if k == "step" else v[..., start:stop] for k, v in state.items()}
            if self.kind == "sgd":
                self._sgd(params[..., start:stop], grad, part)
            else:
                self._adam(params[..., start:stop], grad, part)

    def _sgd(self, params: torch.Tensor, grad: torch.Tensor, state: OptState) -> None:
        g = grad.add(params, alpha=self.weight_decay) if self.weight_decay else grad
        if self.momentum:
            buf = state["momentum"]
            buf.mul_(self.momentum).add_(g)
            g = buf
        params.sub_(g, alpha=self.lr)

    def _adam(self, params: torch.Tensor, grad: torch.Tensor, state: OptState) -> None:
        g = grad
        if self.kind == "adamw":
            params.mul_(1 - self.lr * self.weight_decay)
        elif self.weight_decay:
            g = grad.add(params, alpha=self.weight_decay)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(g, 1 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        step = state["step"]
        bc1 = (1 - torch.pow(self.beta1, step)).to(params.dtype)
        bc2_sqrt = (1 - torch.pow(self.beta2, step)).sqrt().to(params.dtype)
        if params.dim() > 1:
            bc1, bc2_sqrt = bc1.unsqueeze(-1), bc2_sqrt.unsqueeze(-1)
        denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
        params.addcdiv_(m, denom * (bc1 / self.lr), value=-1.0)


def _number(spec: Spec, key: str, default: float, *, low: float, high: float) -> float:
    value = spec.params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < high:
        raise ConfigError(f"{spec.name}: {key} must be a number in [{low}, {high}), got {value!r}")
    return float(value)


def optimizer_from_spec(spec: str | Spec, *, lr: float) -> Optimizer:
    """Build ``sgd[:momentum=M,weight_decay=W]``, ``adam[:...]`` or ``adamw[:...]``.

    >>> optimizer_from_spec("adamw", lr=1e-3).weight_decay
    0.01
    >>> optimizer_from_spec("sgd:momentum=0.9", lr=0.1).state_names()
    ('momentum',)
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if not lr > 0 or lr != lr:
        raise ConfigError(f"lr must be a number > 0, got {lr!r}")
    text = str(spec)
    if spec.name == "sgd":
        spec.expect("momentum", "weight_decay")
        return Optimizer(
            kind="sgd",
            lr=lr,
            momentum=_number(spec, "momentum", 0.0, low=0.0, high=1.0),
            weight_decay=_number(spec, "weight_decay", 0.0, low=0.0, high=1.0),
            spec=text,
        )
    if spec.name in ("adam", "adamw"):
        spec.expect("beta1", "beta2", "eps", "weight_decay")
        return Optimizer(
            kind=spec.name,
            lr=lr,
            beta1=_number(spec, "beta1", 0.9, low=0.0, high=1.0),
            beta2=_number(spec, "beta2", 0.999, low=0.0, high=1.0),
            eps=_number(spec, "eps", 1e-8, low=0.0, high=1.0),
            weight_decay=_number(
                spec, "weight_decay", 0.01 if spec.name == "adamw" else 0.0, low=0.0, high=1.0
            ),
            spec=text,
        )
    raise ConfigError(
        f"unknown optimizer {spec.name!r}; expected sgd[:momentum=M,weight_decay=W], adam[:...] "
        "or adamw[:...]"
    )
