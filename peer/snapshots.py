"""Model snapshots for ``rumor up``'s rounds.jsonl: ``rumor peer --snapshot-dir DIR``.

Every ``--snapshot-every`` rounds (and after the last) the daemon writes its parameters to
``DIR/ROUND.npy`` (rounds completed, six digits); ``rumor up`` evaluates them afterwards on the
whole test set, as the simulator evaluates its peers.

>>> import tempfile, torch
>>> d = Path(tempfile.mkdtemp())
>>> write_snapshot(d, 10, torch.ones(3))
>>> sorted(snapshot_rounds(d)), read_snapshot(d, 10).tolist()
([10], [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import torch

from peer.atomic import write_atomically

__all__ = ["read_snapshot", "snapshot_rounds", "write_snapshot"]

_NAME = re.compile(r"^(\d{6,})\.npy$")


def write_snapshot(directory: Path, round: int, x: torch.Tensor) -> None:
    buffer = io.BytesIO()
    np.save(buffer, x.detach().cpu().numpy(), allow_pickle=False)
    write_atomically(directory / f"{round:06d}.npy", buffer.getvalue(), tmp_prefix=".snap.")


def snapshot_rounds(directory: Path) -> dict[int, Path]:
    """Round -> snapshot file, for every snapshot in ``directory``."""
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found[int(match[1])] = path
    return found


def read_snapshot(directory: Path, round: int) -> torch.Tensor:
    array = np.load(directory / f"{round:06d}.npy", allow_pickle=False)
    return torch.from_numpy(np.ascontiguousarray(array))
