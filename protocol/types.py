"""Named aliases for the types that recur across rumor.

``Vector`` is torch's tensor type; it resolves on first use (PEP 562), so that modules needing
only ``PeerId`` (topics, chunking, the CLI's parsers) do not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

__all__ = ["PeerId", "Vector"]

PeerId: TypeAlias = str
"""A peer's name: unique within a swarm, safe as an MQTT topic level."""

if TYPE_CHECKING:
    import torch

    Vector: TypeAlias = torch.Tensor
    """Flat float parameters: shape [P] for one peer, [N, P] for a batch of peers."""
else:

    def __getattr__(name: str) -> object:
        if name == "Vector":
            import torch

            return torch.Tensor
        raise AttributeError(f"module 'protocol.types' has no attribute {name!r}")
