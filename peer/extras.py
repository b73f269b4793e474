"""What ``rumor up`` asks of a peer beyond its config (``rumor peer --faults``,
``--snapshot-dir``): a fault plan, and model snapshots for ``rounds.jsonl``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from peer.faults import FaultPlan
from peer.snapshots import write_snapshot

__all__ = ["PeerExtras"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeerExtras:
    """A fault plan and where to write model snapshots; the default asks for nothing."""

    faults: FaultPlan | None = None
    snapshot_dir: Path | None = None
    snapshot_every: int = 10

    def snapshot(self, round: int, x: torch.Tensor, *, done: bool) -> None:
        """Write the model after ``round`` if it is a snapshot round, the last, or the round
        before a planned crash (the simulator keeps a down peer's model as it was)."""
        held = self.faults is not None and round in self.faults.hold_at
        if self.snapshot_dir is not None and (done or held or round % self.snapshot_every == 0):
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            write_snapshot(self.snapshot_dir, round, x)
