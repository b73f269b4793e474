"""Local training and evaluation, batched over peers: the code both engines and the daemon run.

Batch sampling is stateless and shared: :func:`batch_indices` draws the whole [N, steps, B] block
of a round from ONE generator seeded from (seed, round), as uniforms turned into indices by each
peer's shard size. Row i therefore depends only on (seed, round, N, steps, B) and peer i's size,
so the vectorised engine, the loop engine and a daemon (which take row i) train on exactly the
same samples. Batches are drawn with replacement, independently every step.

:func:`local_sgd` on [P] parameters with one peer id runs the very same code as the batched call
with N = 1, so it reproduces row i of a batched call: bit for bit with one intra-op thread, and
to float rounding (about 1e-8 absolute after a few steps) when BLAS splits one GEMM over several
threads differently for N = 1 than for a batch. The tests allow 1e-5 relative.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import torch

from peer.tasks.dataset import Dataset, PeerData
from peer.tasks.idx_io import standardise_
from peer.tasks.models import FlatModel
from peer.tasks.module import ModuleModel
from peer.tasks.optim import GradPiece, OptState, optimizer_from_spec
from peer.tasks.recipe import Recipe
from protocol.errors import ConfigError

__all__ = ["batch_indices", "evaluate", "local_sgd", "round_seed"]

_BATCH_STREAM = 0x5EED_BA7C  # keeps batch sampling apart from other (seed, round) streams
_DROPOUT_STREAM = 0xD50_0BAD  # the global generator a plug-in model draws from while training
_BLOCK_FLOATS = 1 << 20  # gathered input floats per block of peers (4 MiB in float32)
_GENERIC_BLOCK_FLOATS = 1 << 22  # torch.func calls cost more per call: larger blocks (16 MiB)
_EVAL_BUDGET = 1 << 23  # activation floats per evaluation chunk (32 MiB in float32)


_GATHERED = threading.local()  # per training thread: the buffers a block's inputs go in


def _kept(like: torch.Tensor, n: int) -> torch.Tensor:
    """A buffer of ``n`` rows shaped and typed like ``like``'s, kept (per thread and dtype) for
    the next block: a fresh multi-megabyte one per block would cost page faults every step."""
    buffers: dict[torch.dtype, torch.Tensor] = _GATHERED.__dict__.setdefault("buffers", {})
    buffer = buffers.get(like.dtype)
    if (
        buffer is None
        or buffer.device != like.device
        or buffer.shape[1:] != like.shape[1:]
        or buffer.shape[0] < n
    ):
        buffer = buffers[like.dtype] = like.new_empty((n, *like.shape[1:]))
    return buffer[:n]


def _gather(data: PeerData, rows: torch.Tensor) -> torch.Tensor:
    """``data.x.index_select(0, rows)`` in a kept buffer: from the uint8 pixels when ``data``
    has them (a quarter of the bytes to fetch), standardised exactly as the loader did.

    >>> data = PeerData(torch.arange(6.0).view(3, 2), torch.zeros(3, dtype=torch.int64),
    ...                 torch.tensor([0, 3]), 2)
    >>> _gather(data, torch.tensor([2, 0])).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    n = rows.numel()
    if data.pixels is None or data.x.dtype != torch.float32:
        return torch.index_select(data.x, 0, rows, out=_kept(data.x, n))
    pixels, stats = data.pixels
    picked = torch.index_select(pixels, 0, rows, out=_kept(pixels, n))
    return standardise_(_kept(data.x, n).copy_(picked), stats)


def round_seed(seed: int, round: int, stream: int = _BATCH_STREAM) -> int:
    """A 63-bit generator seed mixing (seed, round, stream) through NumPy's SeedSequence.

    >>> round_seed(0, 1) == round_seed(0, 1) != round_seed(0, 2)
    True
    """
    if seed < 0 or round < 0:
        raise ConfigError(f"seed and round must be >= 0, got {seed}, {round}")
    state = np.random.SeedSequence([seed, round, stream]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def batch_indices(
    sizes: torch.Tensor, steps: int, batch_size: int, *, seed: int, round: int
) -> torch.Tensor:
    """Per-peer sample indices [N, steps, B] into each peer's own shard (0 <= idx < sizes[i]).

    >>> idx = batch_indices(torch.tensor([3, 100]), 2, 4, seed=1, round=0)
    >>> idx.shape, bool((idx[0] < 3).all())
    (torch.Size([2, 2, 4]), True)
    """
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    if sizes.dim() != 1 or bool((sizes < 1).any()):
        raise ConfigError("sizes must be a 1-D tensor of positive shard sizes")
    g = torch.Generator().manual_seed(round_seed(seed, round))
    u = torch.rand(sizes.numel(), steps, batch_size, generator=g, dtype=torch.float64)
    size = sizes.to(torch.float64).view(-1, 1, 1)
    idx = (u * size).to(torch.int64)  # floor, u >= 0
    return torch.minimum(idx, sizes.view(-1, 1, 1) - 1)  # guard the u * size == size rounding


def _peer_rows(data: PeerData, peer_ids: torch.Tensor | int | None, n: int) -> torch.Tensor:
    if peer_ids is None:
        if n != data.num_peers:
            raise ConfigError(f"{n} parameter rows for {data.num_peers} peers; pass peer_ids")
        return torch.arange(n, device=data.x.device)
    ids = torch.as_tensor(peer_ids, dtype=torch.int64, device=data.x.device).reshape(-1)
    if ids.numel() != n:
        raise ConfigError(f"{ids.numel()} peer ids for {n} parameter rows")
    if bool(((ids < 0) | (ids >= data.num_peers)).any()):
        raise ConfigError(f"peer ids must lie in [0, {data.num_peers})")
    return ids


def local_sgd(
    model: FlatModel | ModuleModel,
    params: torch.Tensor,
    data: PeerData,
    peer_ids: torch.Tensor | int | None = None,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    round: int,
    steps_per_peer: torch.Tensor | None = None,
    indices: torch.Tensor | None = None,
    inplace: bool = False,
    recipe: Recipe | None = None,
    opt_state: OptState | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` optimizer steps for every row of ``params`` ([N, P], or [P] for one peer).

    Row r trains on the shard of peer ``peer_ids[r]`` (default: row r is peer r) with the
    batches of :func:`batch_indices`; pass ``indices`` (that block, or its rows for
    ``peer_ids``) to skip redrawing it. ``steps_per_peer`` [rows] lets stragglers stop early: a
    row stops updating once its count is exhausted. Returns the new parameters (``params``
    itself if ``inplace``) and the mean training loss per row over the steps it took (NaN for a
    row that took none); shapes [N] or a scalar for [P].

    Without ``recipe``: plain SGD with ``lr`` on cross-entropy. With one, its loss and its
    optimizer (``lr`` is then the optimizer's); ``opt_state`` (as ``recipe.optimizer.
    init_state(params)`` made it, rows matching ``params``) is updated in place. A built-in model
    with plain SGD and cross-entropy takes its fused hand-written step.
    """
    single = params.dim() == 1
    work = params if inplace else params.clone()
    rows = work.unsqueeze(0) if single else work
    if not rows.is_contiguous():
        rows = rows.contiguous()  # train on a copy, written back below when inplace
    n = rows.shape[0]
    ids = _peer_rows(data, peer_ids, n)
    if indices is None:
        indices = batch_indices(data.sizes.cpu(), steps, batch_size, seed=seed, round=round)
        indices = indices.to(ids.device)[ids]
    indices = indices.to(ids.device)
    limit = None
    if steps_per_peer is not None:
        limit = steps_per_peer.reshape(n).to(ids.device, torch.int64)
    recipe = recipe if recipe is not None else Recipe(optimizer=optimizer_from_spec("sgd", lr=lr))
    if opt_state is None:
        opt_state = recipe.optimizer.init_state(rows)
    elif single:
        opt_state = {k: v.unsqueeze(0) for k, v in opt_state.items()}
    run = _Steps(model, recipe, opt_state, single=single)
    random = isinstance(model, ModuleModel)  # dropout and the like: fixed by (seed, round, peer)
    # fork_rng costs about 0.2 ms even when disabled (it looks up the accelerator): skip it
    forked = torch.random.fork_rng(devices=[]) if random else contextlib.nullcontext()
    with forked:
        if random:
            torch.manual_seed(round_seed(seed, round, _DROPOUT_STREAM) + int(ids[0]))
        mean_loss = run.steps(rows, data, ids, indices.reshape(n, steps, batch_size), limit)
    out = rows[0] if single else rows
    if inplace and out.data_ptr() != params.data_ptr():
        out = params.copy_(out)
    return out, (mean_loss[0] if single else mean_loss)


class _Steps:
    """The steps of one call: the fused SGD step, or gradient then optimizer step."""

    def __init__(
        self, model: FlatModel | ModuleModel, recipe: Recipe, state: OptState, *, single: bool
    ) -> None:
        self.model, self.recipe, self.state, self.single = model, recipe, state, single
        module = isinstance(model, ModuleModel)
        self.fused = not module and recipe.fast

    def steps(
        self,
        params: torch.Tensor,
        data: PeerData,
        ids: torch.Tensor,
        indices: torch.Tensor,
        limit: torch.Tensor | None,
    ) -> torch.Tensor:
        """Train [n, P] ``params`` in place on batches ``indices`` [n, steps, B]; mean loss [n]."""
        n, steps, batch_size = indices.shape
        base = data.offsets[ids].view(n, 1)
        total = torch.zeros(n, dtype=torch.float64, device=params.device)
        x_shape, y_shape = data.x.shape[1:], data.y.shape[1:]
        # Peers go in blocks whose gathered inputs fit in cache, so the GEMMs re-read them from
        # cache rather than memory (2-3x faster for wide inputs such as 784-pixel images).
        # (as many blocks as that size gives, rounded to the nearest count, of equal size: each
        # block costs some thirty small operations, and a last sliver of a block costs them all)
        floats = _BLOCK_FLOATS if self.fused else _GENERIC_BLOCK_FLOATS
        target = max(1, floats // (batch_size * data.sample_numel))
        block = -(-n // max(1, round(n / target)))
        lr = self.recipe.optimizer.lr
        for step in range(steps):
            active = torch.ones(n, dtype=params.dtype, device=params.device)
            if limit is not None:
                active = (limit > step).to(params.dtype)
                if not bool(active.any()):
                    break
            rate = active * lr if self.fused else active
            step_rows = base + indices[:, step]
            for lo in range(0, n, block):
                hi = min(n, lo + block)
                rows = step_rows[lo:hi].reshape(-1)
                x = _gather(data, rows).view(hi - lo, batch_size, *x_shape)
                y = data.y.index_select(0, rows).view(hi - lo, batch_size, *y_shape)
                x = x.to(params.dtype)
                if self.fused:  # lr 0 leaves a finished straggler exactly as it was
                    loss = self.model.sgd_step(params[lo:hi], x, y, rate[lo:hi])  # type: ignore[union-attr]
                else:
                    loss = self._step(params[lo:hi], x, y, active[lo:hi], slice(lo, hi))
                if limit is None:  # every row active: times 1.0 would change no bit
                    total[lo:hi] += loss.detach().to(torch.float64)
                else:
                    total[lo:hi] += loss.detach().to(torch.float64) * active[lo:hi].to(
                        torch.float64
                    )
        if limit is None:
            return total / steps
        taken = limit.clamp(0, steps).to(torch.float64)
        return (total / taken).where(taken > 0, float("nan"))

    def _step(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        active: torch.Tensor,
        part: slice,
    ) -> torch.Tensor:
        """Gradient and optimizer step of the active rows of ``params`` (in place)."""
        state = {k: v[part] for k, v in self.state.items()}
        loss = torch.zeros(params.shape[0], dtype=torch.float64, device=params.device)
        if bool(active.all()):
            value, pieces = self._loss_and_grad(params, x, y)
            self.recipe.optimizer.step_pieces(params, pieces, state)
            loss.copy_(value)
            return loss
        rows = torch.nonzero(active).flatten()
        sub = params[rows]
        sub_state = {k: v[rows] for k, v in state.items()}
        value, pieces = self._loss_and_grad(sub, x[rows], y[rows])
        self.recipe.optimizer.step_pieces(sub, pieces, sub_state)
        params[rows] = sub
        for k, v in sub_state.items():
            state[k][rows] = v
        loss[rows] = value.to(torch.float64)
        return loss

    def _loss_and_grad(
        self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, list[GradPiece]]:
        """Mean loss [n] and the gradient as pieces (entries a module's buffers hold are in
        none: the optimizer leaves them alone)."""
        model, fn = self.model, self.recipe.loss.fn
        if not isinstance(model, ModuleModel):
            value, grad = model.loss_and_grad(params, x, y)
            return value, [(0, params.shape[1], grad)]
        if self.single:  # the module itself, with autograd: the loop engine and the daemon
            value, pieces = model.loss_and_grad_one(params[0], x[0], y[0], fn)
            return value.reshape(1), [(lo, hi, g.unsqueeze(0)) for lo, hi, g in pieces]
        return model.loss_and_grad_batched(params, x, y, fn)


def evaluate(
    model: FlatModel | ModuleModel,
    params: torch.Tensor,
    test: Dataset,
    *,
    batch: int | None = None,
    recipe: Recipe | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Metric and mean loss on ``test`` of every row of ``params`` [N, P] (or [P]).

    Without ``recipe`` (or with cross-entropy and accuracy on a built-in model): accuracy and
    cross-entropy, fused. Otherwise the recipe's metric and loss, each the mean over the test set
    (batches weighted by their size). The test set is processed in chunks of ``batch`` samples
    (default: sized so one chunk's activations stay near 32 MiB), so memory does not grow with
    the test set. Past the budget, the classic path takes the whole test set for blocks of peers
    instead (when one peer's activations fit): a few larger products rather than one tiny one
    per peer and chunk (100,000 peers: about 8 samples a chunk otherwise).
    """
    p = params.unsqueeze(0) if params.dim() == 1 else params
    n = p.shape[0]
    per_sample = n * model.activations_per_sample
    generic = isinstance(model, ModuleModel) or (recipe is not None and not recipe.classic)
    peers_per_block = n
    if batch is None:
        batch = max(1, _EVAL_BUDGET // per_sample)
        whole = len(test) * model.activations_per_sample  # one peer on the whole test set
        if batch < len(test) and whole <= _EVAL_BUDGET and not generic:
            batch, peers_per_block = len(test), _EVAL_BUDGET // whole
    if generic:
        metric, loss = _evaluate_generic(model, params, test, batch, recipe or Recipe())
        return (metric[0], loss[0]) if params.dim() == 1 else (metric, loss)
    correct = torch.zeros(n, dtype=torch.float64, device=p.device)
    loss = torch.zeros(n, dtype=torch.float64, device=p.device)
    with torch.no_grad():
        for lo in range(0, n, peers_per_block):
            rows = slice(lo, min(n, lo + peers_per_block))
            for start in range(0, len(test), batch):
                x, y = test.x[start : start + batch], test.y[start : start + batch]
                right, lost = _classic_chunk(model, p[rows], x, y)
                correct[rows] += right
                loss[rows] -= lost
    acc, mean_loss = correct / len(test), loss / len(test)
    return (acc[0], mean_loss[0]) if params.dim() == 1 else (acc, mean_loss)


def _classic_chunk(
    model: FlatModel | ModuleModel, p: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct predictions and summed log-likelihood per row of ``p`` on one chunk."""
    n = p.shape[0]
    # Class-major [N, C, b] (a dense model's logits are laid out so; a softmax over
    # the middle dimension is vectorised along b, over a short last one it is slow)
    z = model.forward(p, x.to(p.dtype)).transpose(1, 2)  # inputs shared by all rows
    logp = torch.log_softmax(z, dim=1)
    likelihood = logp.gather(1, y.view(1, 1, -1).expand(n, 1, -1)).sum((1, 2))
    # max(dim).indices: the first maximum, like argmax, which is 5x slower over dim 1
    right = (z.max(1).indices == y).sum(1)
    return right.to(torch.float64), likelihood.to(torch.float64)


def _evaluate_generic(
    model: FlatModel | ModuleModel,
    params: torch.Tensor,
    test: Dataset,
    batch: int,
    recipe: Recipe,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's metric and loss per row [n]: a [P] row through the module itself, [N, P]
    rows batched."""
    p = params.unsqueeze(0) if params.dim() == 1 else params
    n = p.shape[0]
    metric = torch.zeros(n, dtype=torch.float64, device=p.device)
    loss = torch.zeros(n, dtype=torch.float64, device=p.device)
    with torch.no_grad():
        for start in range(0, len(test), batch):
            x, y = test.x[start : start + batch], test.y[start : start + batch]
            if params.dim() == 1:
                out = model.forward(params, x.to(params.dtype)).unsqueeze(0)
            else:
                out = model.forward(p, x.to(p.dtype))
            for row in range(n):
                metric[row] += float(recipe.metric.fn(out[row], y)) * len(y)
                loss[row] += float(recipe.loss.fn(out[row], y)) * len(y)
    return metric / len(test), loss / len(test)
