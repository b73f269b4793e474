"""The two engines behind one :class:`Engine` protocol: ``vector`` (batched) and ``loop``."""

from __future__ import annotations

import torch

from sim.config import EngineName
from sim.engines.base import Engine, EngineContext
from sim.engines.loop import LoopEngine
from sim.engines.vector import VectorEngine

__all__ = ["Engine", "EngineContext", "LoopEngine", "VectorEngine", "make_engine"]


def make_engine(name: EngineName, context: EngineContext, x0: torch.Tensor) -> Engine:
    """The engine called ``name``, starting from the models ``x0`` [N, P]."""
    if name == "loop":
        return LoopEngine(context, x0)
    return VectorEngine(context, x0)
