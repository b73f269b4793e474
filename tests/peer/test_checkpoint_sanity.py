"""A poisoned model never replaces the last good checkpoint, and a failed write is not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from peer.checkpoint import CheckpointError, CheckpointStore
from peer.transport import MemoryBroker
from tests.peer.runtime_helpers import memory_peer, peer_config


def _runtime(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = peer_config(0, 2, rounds=2, checkpoint_dir=tmp_path)
    _, runtime = memory_peer(MemoryBroker(), config)
    return runtime


def test_a_poisoned_state_is_not_checkpointed_and_the_good_ones_stay(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    store = CheckpointStore(tmp_path)
    for r in (2, 4):
        runtime.round = r
        runtime._checkpoint()
    good = [p.name for p in store.paths()]
    assert good == ["round-0000000004.ckpt", "round-0000000002.ckpt"]
    poisoned = runtime.x.clone()
    poisoned[0] = 3.4e36  # finite: a flipped exponent bit
    for r, x in ((6, poisoned), (8, torch.full_like(poisoned, float("nan")))):
        runtime.round, runtime.x = r, x
        runtime._checkpoint()
    assert [p.name for p in store.paths()] == good
    assert runtime.checkpoints_refused == 2
    latest = store.load_latest()
    assert latest is not None
    assert latest.round == 4


def test_a_failed_write_is_logged_and_the_peer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _runtime(tmp_path)

    def full_disk(*_: object) -> Path:
        raise CheckpointError("cannot write checkpoint: [Errno 28] No space left on device")

    monkeypatch.setattr(CheckpointStore, "save", full_disk)
    runtime.round = 2
    runtime._checkpoint()
    assert runtime.checkpoints_refused == 1
    assert "No space left" in caplog.text
