"""Checkpoints: exact round trip, atomic replacement, corruption detected and survived."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from peer.checkpoint import CheckpointError, CheckpointStore, PeerState, decode_state, encode_state


def state(round_: int, *, n: int = 50) -> PeerState:
    g = torch.Generator().manual_seed(round_)
    return PeerState(
        round=round_,
        params=torch.randn(n, generator=g),
        tensors={
            "public/self": torch.randn(n, generator=g),
            "public/pi-02": torch.randn(n, generator=g, dtype=torch.float64),
            "half": torch.randn(3, 2, generator=g).to(torch.bfloat16),
            "ids": torch.arange(4, dtype=torch.int64).reshape(2, 2),
            "scalar": torch.tensor(2.5),
            "empty": torch.empty(0),
        },
        counters={"seq/self": 11 * round_, "seq/pi-02": 2**40},
        meta={"peer": "pi-01", "fingerprint": "ab12", "note": "ünïcode"},
    )


def assert_same(a: PeerState, b: PeerState) -> None:
    assert a.round == b.round
    assert dict(a.counters) == dict(b.counters)
    assert dict(a.meta) == dict(b.meta)
    for name, x in {"params": a.params, **a.tensors}.items():
        y = b.params if name == "params" else b.tensors[name]
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert torch.equal(x, y), name
    assert sorted(a.tensors) == sorted(b.tensors)


def test_round_trip_is_exact_for_every_dtype_and_shape(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ck")
    original = state(3)
    path = store.save(original)
    assert path.name == "round-0000000003.ckpt"
    loaded = store.load_latest()
    assert loaded is not None
    assert_same(original, loaded)
    loaded.params.add_(1.0)  # loaded tensors own writable memory


def test_a_saved_file_holds_exactly_the_encoded_bytes(tmp_path: Path) -> None:
    original = state(4)
    path = CheckpointStore(tmp_path).save(original)
    data = path.read_bytes()
    assert data == encode_state(original)
    assert data[-32:] == hashlib.sha256(data[:-32]).digest()


def test_a_save_makes_no_copy_of_the_state(tmp_path: Path) -> None:
    # The tensors' bytes go to the file straight from their memory: a whole-file bytes object
    # (and the per-tensor copies it was joined from) would show as Python allocations here.
    big = PeerState(round=1, params=torch.ones(1 << 20), tensors={"x_hat": torch.ones(1 << 20)})
    store = CheckpointStore(tmp_path)
    tracemalloc.start()
    try:
        store.save(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < (1 << 20), f"{peak} bytes allocated while saving 8 MiB of tensors"
    loaded = store.load_latest()
    assert loaded is not None
    assert_same(big, loaded)


def test_empty_store_has_no_checkpoint(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path / "never-created").load_latest() is None


def test_keeps_the_last_two(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    for r in range(1, 6):
        store.save(state(r, n=5))
    assert [p.name for p in store.paths()] == ["round-0000000005.ckpt", "round-0000000004.ckpt"]
    latest = store.load_latest()
    assert latest is not None
    assert latest.round == 5


def test_interrupted_write_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(state(1))

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(CheckpointError, match="No space left"):
        store.save(state(2))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["round-0000000001.ckpt"]
    latest = store.load_latest()
    assert latest is not None
    assert_same(state(1), latest)


def test_temp_file_of_a_killed_writer_is_ignored_and_removed(tmp_path: Path) -> None:
    CheckpointStore(tmp_path).save(state(4))
    stray = tmp_path / ".round-abc123.tmp"
    stray.write_bytes(encode_state(state(5))[:100])  # the process died mid-write
    store = CheckpointStore(tmp_path)
    assert not stray.exists()
    stray.write_bytes(b"partial")
    latest = store.load_latest()
    assert latest is not None
    assert latest.round == 4
    assert not stray.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "checksum mismatch"),
        (lambda b: b[:10], "bad magic or truncated"),
        (lambda b: b[:60] + bytes([b[60] ^ 0x01]) + b[61:], "checksum mismatch"),
        (lambda b: b"", "bad magic or truncated"),
        (lambda b: pickle.dumps({"round": 9}), "not a rumor checkpoint"),
    ],
)
def test_corrupt_newest_is_set_aside_and_the_previous_used(
    tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    store = CheckpointStore(tmp_path)
    store.save(state(1))
    newest = store.save(state(2))
    newest.write_bytes(damage(newest.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        store.load(newest)
    latest = store.load_latest()
    assert latest is not None
    assert_same(state(1), latest)
    assert (tmp_path / "round-0000000002.ckpt.corrupt").exists()
    store.save(state(3))  # the good round 1 is pruned only by newer good ones
    assert [p.name for p in store.paths()] == ["round-0000000003.ckpt", "round-0000000001.ckpt"]


def test_no_intact_checkpoint_is_an_error(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(state(1)).write_bytes(b"RUMORCK1 garbage")
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        store.load_latest()


def forge(header: object, blob: bytes = b"") -> bytes:
    """A file with a valid digest around an arbitrary header: the parser must still refuse it."""
    head = json.dumps(header).encode()
    body = b"RUMORCK1" + struct.pack("<I", len(head)) + head + blob
    return body + hashlib.sha256(body).digest()


GOOD_ENTRY = {"name": "params", "dtype": "float32", "shape": [2], "offset": 0}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([], "format is not 1"),
        ({"format": 2}, "format is not 1"),
        ({"format": 1, "byteorder": "middle"}, "middle-endian"),
        ({"format": 1, "byteorder": "little", "round": 1, "tensors": 5}, "no tensor list"),
        (
            {
                "format": 1,
                "byteorder": "little",
                "round": 1,
                "tensors": [{**GOOD_ENTRY, "shape": [9]}],
            },
            "overruns the file",
        ),
        (
            {
                "format": 1,
                "byteorder": "little",
                "round": 1,
                "tensors": [{**GOOD_ENTRY, "dtype": "object"}],
            },
            "malformed tensor entry",
        ),
        (
            {"format": 1, "byteorder": "little", "round": "1", "tensors": [GOOD_ENTRY]},
            "lacks the round",
        ),
        (
            {
                "format": 1,
                "byteorder": "little",
                "round": 1,
                "tensors": [GOOD_ENTRY],
                "counters": {"a": "x"},
            },
            "counters are not a map of ints",
        ),
    ],
)
def test_forged_headers_are_refused_cleanly(header: object, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        decode_state(forge(header, b"\x00" * 8), source="forged")


def test_state_is_validated() -> None:
    with pytest.raises(CheckpointError, match="round=-1"):
        PeerState(round=-1, params=torch.zeros(1))
    with pytest.raises(CheckpointError, match="reserved"):
        PeerState(round=0, params=torch.zeros(1), tensors={"params": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="complex64"):
        PeerState(round=0, params=torch.zeros(1, dtype=torch.complex64))
