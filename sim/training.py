"""Local training of a batch of peers (vector engine) or of one peer (loop engine).

A thin adapter over :func:`peer.tasks.learner.local_sgd`. Both engines take their batches from the
one block :func:`peer.tasks.learner.batch_indices` draws per round for ALL peers and the configured
number of steps (stragglers stop early inside it), so they train on exactly the same samples. The
optimizer state of every peer ([N, P] moments, [N] step counts) lives here, so both engines
update the same rows of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from peer.tasks import PeerData
from peer.tasks.learner import batch_indices, local_sgd
from peer.tasks.optim import OptState
from peer.tasks.recipe import Recipe
from peer.tasks.task import Model

__all__ = ["Trainer"]

IntArray = npt.NDArray[np.int64]


@dataclass(kw_only=True)
class Trainer:
    model: Model
    data: PeerData
    steps: int
    batch_size: int
    lr: float
    seed: int
    recipe: Recipe | None = None
    _block: tuple[int, torch.Tensor] | None = field(default=None, repr=False)
    _state: OptState | None = field(default=None, repr=False)
    _sizes: torch.Tensor | None = field(default=None, repr=False)

    def _recipe(self) -> Recipe:
        return self.recipe if self.recipe is not None else Recipe.from_specs(lr=self.lr)

    def opt_state(self) -> OptState:
        """Every peer's optimizer state ([N, P] tensors and the [N] step counts)."""
        if self._state is None:
            shape = torch.empty(
                self.data.num_peers, self.model.num_params, device=self.data.x.device
            )
            self._state = self._recipe().optimizer.init_state(shape)
        return self._state

    def indices(self, round: int) -> torch.Tensor:
        """This round's [N, steps, B] sample block (drawn once per round, shared by all peers)."""
        if self._block is None or self._block[0] != round:
            if self._sizes is None:
                self._sizes = self.data.sizes.cpu()  # drawn on the host, as on every device
            block = batch_indices(
                self._sizes, self.steps, self.batch_size, seed=self.seed, round=round
            )
            self._block = (round, block.to(self.data.x.device))
        return self._block[1]

    def train(
        self,
        params: torch.Tensor,
        peers: IntArray,
        steps: IntArray,
        *,
        round: int,
        inplace: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Train ``peers`` (rows of ``params``, or one vector [P] for one peer) for ``steps``.

        Returns the new parameters (``params`` itself if ``inplace``) and the mean training
        loss per peer [len(peers)] (NaN where a peer took no step).
        """
        if self.steps == 0 or not steps.any():
            return params, torch.full((len(peers),), float("nan"), device=params.device)
        every = len(peers) == self.data.num_peers and bool((peers == np.arange(len(peers))).all())
        ids = torch.from_numpy(peers).to(params.device)
        state = self.opt_state()
        rows: OptState
        if params.dim() == 1:
            rows = {k: v[int(peers[0])] for k, v in state.items()}  # views: updated in place
        else:
            rows = state if every else {k: v[ids] for k, v in state.items()}
        limit = None if (steps == self.steps).all() else torch.from_numpy(steps).to(ids.device)
        new, loss = local_sgd(
            self.model,
            params,
            self.data,
            ids,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            round=round,
            steps_per_peer=limit,
            indices=self.indices(round) if every else self.indices(round)[ids],
            inplace=inplace,
            recipe=self._recipe(),
            opt_state=rows,
        )
        if rows is not state and params.dim() > 1:
            for k, v in rows.items():
                state[k][ids] = v
        return new, loss.reshape(-1)
