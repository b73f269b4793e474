"""A user's ``torch.nn.Module`` on flat vectors: the layout contract, and its two training paths.

The flat vector (the layout contract)
-------------------------------------
Walk ``module.state_dict()`` in its order. Every entry with a floating-point dtype (parameters
and floating buffers such as BatchNorm's ``running_mean`` and ``running_var``) is flattened
row-major (``tensor.reshape(-1)``), and these pieces are concatenated, as float32, in that order:
that is the vector ``x`` [P] that is trained, compressed, gossiped, mixed and checkpointed.
Entries of other dtypes (integer buffers such as ``num_batches_tracked``) are not in it: they
stay on the peer. To turn a vector back into a state dict, walk ``module.state_dict()`` in the
same order, take the next ``numel`` floats of ``x`` for each floating entry (reshaped to its
shape), and keep every other entry as it is. The modules must hold float32 floating entries.

The wire fingerprint hashes the layout of the floating entries (name, shape, ``float32``), so
peers whose modules differ in any name or shape reject each other's messages.

Only parameters are trained; the optimizer leaves the buffer entries to the module, which
updates its running statistics in the training forward pass, as ``torch.nn`` does.

Two paths, one result
---------------------
One row ([1, P]: the loop engine and the daemon) runs the module itself with autograd. Several
rows ([N, P]: the vector engine) run it batched over peers with ``torch.func``: ``vmap`` of
``grad_and_value`` of ``functional_call``, with the buffers passed per peer so every peer's
BatchNorm statistics are its own, and ``randomness="different"`` so every peer draws its own
dropout masks. The two agree to float rounding (a test checks 1e-5 over 20 rounds).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch.func import functional_call, grad_and_value, vmap

from peer.tasks.layout import Layout, param_count, split_views
from peer.tasks.optim import GradPiece
from peer.tasks.plugin import PluginError, PluginRef, parse_plugin

__all__ = ["ModuleModel", "module_layout"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def module_layout(module: torch.nn.Module) -> tuple[Layout, dict[str, torch.Tensor]]:
    """The vector layout of ``module`` (floating state entries, in state_dict order) and its
    other (integer) state entries, which stay local.

    >>> layout, local = module_layout(torch.nn.BatchNorm1d(2))
    >>> [name for name, _, _ in layout], list(local)
    (['weight', 'bias', 'running_mean', 'running_var'], ['num_batches_tracked'])
    """
    entries, local = [], {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if tensor.is_floating_point():
            if tensor.dtype != torch.float32:
                raise PluginError(f"state entry {name!r} is {tensor.dtype}; expected float32")
            entries.append((name, tuple(tensor.shape), "float32"))
        else:
            local[name] = tensor
    return tuple(entries), local


class ModuleModel:
    """A module built by a plug-in ``package.module:function[:key=value,...]``, seen as flat
    vectors (see the module docstring). ``forward`` is in evaluation mode."""

    def __init__(self, ref: PluginRef | str, *, seed: int = 0) -> None:
        self.ref = parse_plugin(ref, "model") if isinstance(ref, str) else ref
        self.name = str(self.ref)
        self.seed = seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the shared initial model depends only on the seed
            module = self.ref.call(role="model")
        if not isinstance(module, torch.nn.Module):
            raise PluginError(
                f"model {self.name!r} must return a torch.nn.Module, got {type(module).__name__}"
            )
        self.module = module
        self.layout, self.local = module_layout(module)
        if not self.layout:
            raise PluginError(f"model {self.name!r} has no floating-point parameters")
        self.num_params = param_count(self.layout)
        state = module.state_dict(keep_vars=True)
        self._tensors = [state[name] for name, _, _ in self.layout]
        params = {id(p) for p in module.parameters()}
        self._is_param = [id(t) in params for t in self._tensors]
        pieces = zip(self.layout, self._is_param, strict=True)
        self.mask = torch.cat([torch.full((math.prod(s),), flag) for (_, s, _), flag in pieces])
        starts = [0, *itertools.accumulate(math.prod(s) for _, s, _ in self.layout)]
        self._spans = [
            (name, starts[i], starts[i + 1])
            for i, ((name, _, _), flag) in enumerate(zip(self.layout, self._is_param, strict=True))
            if flag
        ]
        """(name, start, stop) of every trained entry in the vector."""
        self._params = [t for t, flag in zip(self._tensors, self._is_param, strict=True) if flag]
        """Entries the optimizer trains (parameters, not buffers), bool [P]."""
        self.trains_all = bool(self.mask.all())
        self._start = self.flatten()
        self.activations_per_sample = 1024
        """Outputs and hidden activations per sample, for sizing evaluation chunks: a guess
        until :meth:`measure_activations` has seen some inputs."""

    def __repr__(self) -> str:
        return f"ModuleModel({self.name!r}, params={self.num_params})"

    def flatten(self) -> torch.Tensor:
        """The module's current floating state as one float32 vector [P]."""
        return torch.cat([t.detach().reshape(-1) for t in self._tensors]).to(torch.float32)

    def load(self, x: torch.Tensor) -> None:
        """Copy the vector ``x`` [P] into the module's parameters and buffers."""
        with torch.no_grad():
            for t, view in zip(self._tensors, split_views(x.view(1, -1), self.layout), strict=True):
                t.copy_(view[0])

    def init(self, *, seed: int) -> torch.Tensor:
        """The module's initial state (built under ``seed`` at construction), as [P]."""
        if seed == self.seed:
            return self._start.clone()
        return ModuleModel(self.ref, seed=seed).init(seed=seed)

    def _outputs(self, out: object) -> torch.Tensor:
        if not isinstance(out, torch.Tensor):
            raise PluginError(
                f"model {self.name!r}: forward must return a tensor, got {type(out).__name__}"
            )
        return out

    def _dicts(
        self, views: list[torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params: dict[str, torch.Tensor] = {}
        buffers = dict(self.local)
        for (name, _, _), view, is_param in zip(self.layout, views, self._is_param, strict=True):
            (params if is_param else buffers)[name] = view
        return params, buffers

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Outputs in evaluation mode: [P] & [B, ...] -> [B, ...]; [N, P] & [B, ...] (shared
        inputs) -> [N, B, ...]."""
        self.module.eval()
        with torch.no_grad():
            if params.dim() == 1:
                self.load(params)
                return self._outputs(self.module(x))
            views = split_views(params.contiguous(), self.layout)

            def one(*row: torch.Tensor) -> torch.Tensor:
                p, b = self._dicts(list(row))
                return self._outputs(functional_call(self.module, (p, b), (x,)))

            return vmap(one)(*views)

    def measure_activations(self, x: torch.Tensor) -> int:
        """Set :attr:`activations_per_sample` from one evaluation pass over ``x`` [B, ...]: the
        floats every submodule outputs, per sample (a bound on what a chunk holds at once).

        >>> model = ModuleModel("torch.nn:Linear:in_features=6,out_features=3")
        >>> model.measure_activations(torch.zeros(4, 6))
        3
        """
        floats = 0

        def count(_: torch.nn.Module, __: object, out: object) -> None:
            nonlocal floats
            if isinstance(out, torch.Tensor):
                floats += out.numel()

        hooks = [m.register_forward_hook(count) for m in self.module.modules()]
        try:
            self.forward(self.flatten(), x)
        finally:
            for hook in hooks:
                hook.remove()
        self.activations_per_sample = max(1, math.ceil(floats / max(1, len(x))))
        return self.activations_per_sample

    def loss_and_grad_one(
        self, x: torch.Tensor, data: torch.Tensor, target: torch.Tensor, loss: LossFn
    ) -> tuple[torch.Tensor, list[GradPiece]]:
        """The module itself with autograd, on one row ``x`` [P]: mean loss and the gradient of
        each parameter entry as pieces ``(start, stop, [stop - start])``; ``x``'s buffer entries
        take the module's updated statistics."""
        module = self.module
        module.train()
        self.load(x)
        for t in self._tensors:
            t.grad = None
        value = loss(self._outputs(module(data)), target)
        value.backward()  # type: ignore[no-untyped-call]
        pieces = []
        for (_, lo, hi), t in zip(self._spans, self._params, strict=True):
            grad = t.grad
            pieces.append((lo, hi, torch.zeros(hi - lo) if grad is None else grad.reshape(-1)))
        with torch.no_grad():
            for t, view, is_param in zip(
                self._tensors, split_views(x.view(1, -1), self.layout), self._is_param, strict=True
            ):
                if not is_param:
                    view[0].copy_(t)
        return value.detach(), pieces

    def loss_and_grad_batched(
        self, params: torch.Tensor, data: torch.Tensor, target: torch.Tensor, loss: LossFn
    ) -> tuple[torch.Tensor, list[GradPiece]]:
        """``torch.func`` over rows ``params`` [N, P] (contiguous; buffer entries updated in
        place), inputs [N, B, ...]: mean loss [N] and the gradient of each parameter entry, as
        pieces ``(start, stop, [N, stop - start])`` (no copy into one [N, P] tensor).

        The integer buffers go in per row and row 0's come back: the rows take their steps
        together, so their step counters agree."""
        self.module.train()
        n = params.shape[0]
        trained, buffers = self._dicts(split_views(params, self.layout))
        local = {k: v.expand(n, *v.shape).clone() for k, v in self.local.items()}
        # contiguous copies: batch_norm silently skips updating strided running statistics
        views = {k: v for k, v in buffers.items() if k not in local}
        buffers = {k: v.clone() for k, v in views.items()}

        def one(
            p: dict[str, torch.Tensor],
            b: dict[str, torch.Tensor],
            i: dict[str, torch.Tensor],
            xb: torch.Tensor,
            yb: torch.Tensor,
        ) -> tuple[torch.Tensor, tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
            value = loss(self._outputs(functional_call(self.module, (p, {**b, **i}), (xb,))), yb)
            return value, (b, i)  # the buffers, as the forward pass updated them

        grads, (value, (new_buffers, new_local)) = vmap(
            grad_and_value(one, has_aux=True), randomness="different"
        )(trained, buffers, local, data, target)
        with torch.no_grad():
            for name, view in views.items():
                view.copy_(new_buffers[name])
            for name, tensor in self.local.items():
                tensor.copy_(new_local[name][0])
        return value.detach(), [
            (lo, hi, grads[name].reshape(n, -1)) for name, lo, hi in self._spans
        ]
