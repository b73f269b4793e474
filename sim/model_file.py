"""The average model of a run, as a state dict a user loads into their module.

``rumor sim --out DIR`` writes it as ``DIR/model.safetensors``: the mean of the peers' flat
vectors, turned back into the module's own names (a plug-in module's, or a built-in model's
``torch.nn`` equivalent, see :mod:`peer.tasks.modules`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from peer.export import save_safetensors, state_dict_from_vector
from peer.tasks.module import ModuleModel
from peer.tasks.modules import torch_module
from peer.tasks.task import Model

__all__ = ["average_state", "write_average_model"]


def average_state(model: Model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The state dict of the mean of the rows of ``x`` [N, P] (float32), for ``model``.

    >>> from peer.tasks.models import model_from_spec
    >>> state = average_state(model_from_spec("logreg", 2, 2), torch.tensor([[0.0] * 6, [2.0] * 6]))
    >>> state["fc1.weight"].tolist(), state["fc1.bias"].tolist()
    ([[1.0, 1.0], [1.0, 1.0]], [1.0, 1.0])
    """
    mean = x.detach().to(torch.float64).mean(0).to("cpu", torch.float32)
    module = model.module if isinstance(model, ModuleModel) else torch_module(model)
    return state_dict_from_vector(module, mean)


def write_average_model(model: Model, x: torch.Tensor, path: Path, *, round: int) -> Path:
    """Write the average model of ``x`` to ``path`` (safetensors, atomically)."""
    meta = {"model": model.name, "round": str(round), "peers": str(x.shape[0])}
    return save_safetensors(average_state(model, x), path, metadata=meta)
