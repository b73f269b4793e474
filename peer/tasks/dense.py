"""Fully connected ReLU networks (``logreg``, ``mlp``) on flat parameters, differentiated by hand.

The batched forward and backward passes are written with ``torch.baddbmm``/``torch.bmm`` on views
into the [N, P] parameter buffer: no per-peer Python loop and no autograd. The logits are
class-major, [N, C, B], so the softmax over classes reduces over a middle dimension, which
PyTorch vectorises along the batch (20x faster than over a last dimension of 10 classes).

Weight gradients go into a contiguous per-thread workspace [N, out, in] that is reused across
steps, then :meth:`DenseNet.sgd_step` subtracts them from the parameter views in place. Why not
write into the views directly: a weight view has batch stride P, not out * in, and PyTorch only
hands a *contiguous* result to MKL's batched GEMM; a strided one falls back to one small GEMM per
peer, which is 1.5x slower on a quiet machine and up to 10x slower when other processes share the
cores. Why reuse the workspace: a fresh [N, P]-sized allocation costs page faults every step.
"""

from __future__ import annotations

import itertools
import threading

import torch

from peer.tasks.layout import (
    Layout,
    as_batch,
    param_count,
    split_views,
    uniform_init,
    xent_and_dlogits,
)
from protocol.errors import ConfigError

__all__ = ["DenseNet"]


class DenseNet:
    """Layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``, ReLU between them, logits out.

    Parameters follow ``torch.nn.Linear``: ``fc{i}.weight`` [out, in] then ``fc{i}.bias`` [out].

    >>> net = DenseNet((4, 3, 2), name="mlp:hidden=3")
    >>> net.num_params, [name for name, _, _ in net.layout]
    (23, ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'])
    >>> net.forward(net.init(seed=0), torch.zeros(5, 4)).shape
    torch.Size([5, 2])
    """

    def __init__(self, sizes: tuple[int, ...], *, name: str) -> None:
        if len(sizes) < 2 or min(sizes) < 1 or sizes[-1] < 2:
            raise ConfigError(f"dense layer sizes must be >= 1 with >= 2 classes, got {sizes}")
        self.sizes, self.name = sizes, name
        entries: list[tuple[str, tuple[int, ...], str]] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            entries += [(f"fc{i}.weight", (fan_out, fan_in), "float32")]
            entries += [(f"fc{i}.bias", (fan_out,), "float32")]
        self.layout: Layout = tuple(entries)
        self.num_params = param_count(self.layout)
        self.input_dim, self.num_classes = sizes[0], sizes[-1]
        self.activations_per_sample = sum(sizes[1:])
        self._local = threading.local()  # workspaces, one set per training thread

    def __repr__(self) -> str:
        return f"DenseNet({self.name!r}, sizes={self.sizes})"

    def init(self, *, seed: int) -> torch.Tensor:
        fan_ins = [s for s in self.sizes[:-1] for _ in range(2)]
        return uniform_init(self.layout, fan_ins, seed=seed)

    def _layers(self, params: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        views = split_views(params, self.layout)
        return list(zip(views[::2], views[1::2], strict=True))

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits: [P] & [B, D] -> [B, C]; [N, P] & [N, B, D] -> [N, B, C]; and [N, P] & [B, D]
        (one input batch shared by all peers, as in evaluation) -> [N, B, C].

        The result is a transposed view of class-major logits [N, C, B] (see
        :meth:`logits_by_class`)."""
        return self.logits_by_class(params, x).transpose(-1, -2)

    def logits_by_class(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Class-major logits, contiguous: [P] & [B, D] -> [C, B]; [N, P] & [N, B, D] or
        [B, D] -> [N, C, B]. Softmax over classes is much faster in this layout."""
        if params.dim() == 2 and x.dim() == 2:
            x = x.expand(params.shape[0], -1, -1)  # batch stride 0: bmm reads x once per peer
        p, xb, single = as_batch(params, x, self.num_params)
        z = self._activations(self._layers(p), xb, align=False)[1]
        return z[0] if single else z

    def _activations(
        self, layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, *, align: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The inputs of every layer, batch-major [N, B, width] (x first), and the logits,
        class-major [N, C, B] (W @ A^T: the softmax then reduces over a middle dimension, and
        for short batches this product is 2x faster than A @ W^T).

        ``align`` runs the logits product on a 64-byte-aligned copy of W. MKL sums a W @ A^T
        product in an order that depends on W's address modulo 16 bytes, and peer i's row of
        an [N, P] buffer sits at i * P floats: without the copy, a peer trained alone (the loop
        engine, a daemon) would differ in the last bits from the same peer trained in a batch.
        The other products here were measured insensitive to where W lies."""
        acts = [x]
        for w, b in layers[:-1]:
            acts.append(torch.baddbmm(b.unsqueeze(1), acts[-1], w.transpose(1, 2)).relu_())
        w, b = layers[-1]
        if align:
            w = self._aligned(len(layers) - 1, w)
        return acts, torch.baddbmm(b.unsqueeze(2), w, acts[-1].transpose(1, 2))

    def _buffer(
        self,
        key: tuple[object, ...],
        shape: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
    ) -> torch.Tensor:
        """A float buffer kept per thread for the next step (fresh allocations of this size
        cost page faults every step)."""
        spaces: dict[tuple[object, ...], torch.Tensor] = self._local.__dict__.setdefault("ws", {})
        if key not in spaces:
            if len(spaces) >= 8:  # e.g. both engines in one process: keep a few shapes only
                spaces.clear()
            spaces[key] = torch.empty(shape, dtype=dtype, device=device)
        return spaces[key]

    def _workspace(self, layer: int, like: torch.Tensor) -> torch.Tensor:
        """A contiguous buffer shaped like weight view ``like``."""
        shape = tuple(like.shape)
        key = ("grad", layer, shape, like.dtype, like.device)
        return self._buffer(key, shape, like.dtype, like.device)

    def _aligned(self, layer: int, w: torch.Tensor) -> torch.Tensor:
        """A copy of weight view ``w`` [N, out, in] whose every peer starts 64 bytes aligned."""
        n, rows, cols = w.shape
        stride = -(-rows * cols // 16) * 16  # floats; the allocator aligns the base to 64 bytes
        key = ("aligned", layer, tuple(w.shape), w.dtype, w.device)
        buffer = self._buffer(key, (n, stride), w.dtype, w.device)
        return buffer.as_strided(w.shape, (stride, cols, 1)).copy_(w)

    def _backward(
        self,
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        x: torch.Tensor,
        y: torch.Tensor,
        scale: torch.Tensor | float,
        grads: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        """Mean loss [N]; ``scale`` times the gradient goes into ``grads`` if given, else it is
        subtracted from the parameters in place (SGD with lr = scale)."""
        acts, z = self._activations(layers, x, align=True)
        loss, dz = xent_and_dlogits(z, y, scale)  # class-major [N, C, B]
        last = len(layers) - 1
        for i in range(last, -1, -1):
            w, b = layers[i]
            a = acts[i]  # [N, B, in]
            gw = self._workspace(i, w)  # contiguous: MKL's batched GEMM (see the module doc)
            if i == last:  # dz class-major [N, out, B]
                da = torch.bmm(dz.transpose(1, 2), w) if i > 0 else None  # W before its update
                gw.baddbmm_(dz, a, beta=0.0)
                db = dz.sum(2)
            else:  # dz batch-major [N, B, out]
                da = torch.bmm(dz, w) if i > 0 else None
                gw.baddbmm_(dz.transpose(1, 2), a, beta=0.0)
                db = dz.sum(1)
            if grads is None:
                w.sub_(gw)
                b.sub_(db)
            else:
                grads[i][0].copy_(gw)
                grads[i][1].copy_(db)
            if da is not None:
                dz = da.mul_(a > 0)  # ReLU' from the post-ReLU input of layer i
        return loss

    def loss_and_grad(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        out: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy and its gradient: per peer ([N], [N, P]) or for [P] (scalar, [P]).

        ``out`` (same shape as ``params``, contiguous) receives the gradient without allocating.
        """
        p, xb, single = as_batch(params, x, self.num_params)
        grad = torch.empty_like(p) if out is None else (out.unsqueeze(0) if single else out)
        loss = self._backward(self._layers(p), xb, _batch_y(y, single), 1.0, self._layers(grad))
        return (loss[0], grad[0]) if single else (loss, grad)

    def sgd_step(
        self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor | float
    ) -> torch.Tensor:
        """One SGD step in place on contiguous ``params``; ``lr`` a float or per peer [N] (0
        freezes a peer). Returns the loss before the step, [N] (scalar for [P])."""
        if not params.is_contiguous():
            raise ConfigError("sgd_step updates params in place: they must be contiguous")
        p, xb, single = as_batch(params, x, self.num_params)
        scale = lr.reshape(-1) if isinstance(lr, torch.Tensor) else lr
        loss = self._backward(self._layers(p), xb, _batch_y(y, single), scale, None)
        return loss[0] if single else loss


def _batch_y(y: torch.Tensor, single: bool) -> torch.Tensor:
    return y.unsqueeze(0) if single else y
