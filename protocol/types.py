"""Named aliases for the types that recur across rumor."""

from __future__ import annotations

from typing import TypeAlias

import torch

__all__ = ["PeerId", "Vector"]

PeerId: TypeAlias = str
"""A peer's name: unique within a swarm, safe as an MQTT topic level."""

Vector: TypeAlias = torch.Tensor
"""Flat float parameters: shape [P] for one peer, [N, P] for a batch of peers."""
