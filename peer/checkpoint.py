"""Atomic checkpoints of a peer's state, so that a restarted peer resumes at its round.

The state is plain data: the round, the parameters, other named tensors (CHOCO public copies),
integer counters (sequence numbers) and string metadata (peer id, model fingerprint). No
optimizer, no pickle: a file is ::

    b"RUMORCK1" | u32 header length | JSON header | raw tensor bytes | sha256 of all before it

so loading never executes anything, and corruption or truncation is detected by the digest.

A save writes a temp file in the same directory, flushes and fsyncs it, renames it over the
final name and fsyncs the directory; a crash at any point leaves the previous checkpoint intact.
The store keeps the last two; a corrupt newest one is set aside (``*.corrupt``) and the one
before it is used. One peer per directory: stray temp files in it are deleted.

>>> import torch
>>> state = PeerState(round=7, params=torch.tensor([1.0, -2.0]), counters={"seq": 3})
>>> again = decode_state(encode_state(state), source="memory")
>>> again.round, again.params.tolist(), dict(again.counters)
(7, [1.0, -2.0], {'seq': 3})
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import torch

from peer.atomic import write_atomically
from protocol.errors import RumorError
from protocol.types import Vector

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "PeerState",
    "SavedModel",
    "decode_state",
    "encode_state",
    "read_model",
    "write_state",
]

log = logging.getLogger(__name__)

MAGIC: Final = b"RUMORCK1"
_LEN: Final = struct.Struct("<I")
_DIGEST: Final = hashlib.sha256().digest_size
_FORMAT: Final = 1
_DTYPES: Final[dict[str, torch.dtype]] = {
    str(d).removeprefix("torch."): d
    for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32, torch.int64)
}
_TMP_PREFIX, _SUFFIX, _CORRUPT = ".round-", ".ckpt", ".corrupt"


class CheckpointError(RumorError):
    """A checkpoint cannot be written, or a file is not a complete, intact checkpoint."""


@dataclass(frozen=True, kw_only=True, eq=False)
class PeerState:
    """What a peer needs to resume. ``tensors`` must not reuse the name ``params``."""

    round: int
    params: Vector
    tensors: Mapping[str, Vector] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.round < 0:
            raise CheckpointError(f"round={self.round}: expected an int >= 0")
        if "params" in self.tensors:
            raise CheckpointError("tensors: the name 'params' is reserved for the parameters")
        for name, tensor in {"params": self.params, **self.tensors}.items():
            dtype = str(tensor.dtype).removeprefix("torch.")
            if dtype not in _DTYPES:
                raise CheckpointError(
                    f"tensor {name!r} has dtype {dtype}; expected one of {_DTYPES}"
                )


def encode_state(state: PeerState) -> bytes:
    """The checkpoint file's bytes for ``state``."""
    out = io.BytesIO()
    write_state(state, out)
    return out.getvalue()


def write_state(state: PeerState, stream: IO[bytes]) -> None:
    """Write the bytes :func:`encode_state` gives to ``stream``, piece by piece: each tensor's
    bytes go out straight from its memory, so a save holds no copy of the state (a whole-file
    ``bytes`` of a 1M-parameter peer's model and public copy would be 8 MB, and building it
    took three such copies at once)."""
    entries, blobs, offset = [], [], 0
    for name, tensor in {"params": state.params, **state.tensors}.items():
        flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        dtype = str(tensor.dtype).removeprefix("torch.")
        entries.append(
            {"name": name, "dtype": dtype, "shape": list(tensor.shape), "offset": offset}
        )
        blobs.append(flat)
        offset += flat.numel()
    header = {
        "format": _FORMAT,
        "byteorder": sys.byteorder,
        "round": state.round,
        "counters": dict(state.counters),
        "meta": dict(state.meta),
        "tensors": entries,
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    pieces: list[bytes | memoryview] = [MAGIC, _LEN.pack(len(head)), head]
    for piece in [*pieces, *(b.numpy().data for b in blobs)]:
        digest.update(piece)
        stream.write(piece)
    stream.write(digest.digest())


def _header(data: bytes, source: str) -> tuple[dict[str, object], memoryview]:
    """Check magic, length and digest; return the parsed header and the tensor region."""
    fixed = len(MAGIC) + _LEN.size
    if len(data) < fixed + _DIGEST or not data.startswith(MAGIC):
        raise CheckpointError(f"{source}: not a rumor checkpoint (bad magic or truncated)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{source}: checksum mismatch (truncated or corrupt file)")
    (size,) = _LEN.unpack_from(data, len(MAGIC))
    if fixed + size > len(body):
        raise CheckpointError(f"{source}: header of {size} bytes overruns the file")
    try:
        header = json.loads(body[fixed : fixed + size])
    except ValueError as exc:
        raise CheckpointError(f"{source}: header is not JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise CheckpointError(f"{source}: header format is not {_FORMAT}")
    if header.get("byteorder") != sys.byteorder:
        raise CheckpointError(f"{source}: written {header.get('byteorder')}-endian; this is not")
    return header, memoryview(body)[fixed + size :]


def _entry(entry: object, source: str) -> tuple[str, torch.dtype, list[int], int]:
    if isinstance(entry, dict):
        name, dtype = entry.get("name"), _DTYPES.get(str(entry.get("dtype")))
        shape, offset = entry.get("shape"), entry.get("offset")
        if (
            isinstance(name, str)
            and dtype is not None
            and isinstance(offset, int)
            and offset >= 0
            and isinstance(shape, list)
            and all(isinstance(n, int) and n >= 0 for n in shape)
        ):
            return name, dtype, shape, offset
    raise CheckpointError(f"{source}: malformed tensor entry {entry!r}")


def _tensor(entry: object, region: memoryview, source: str) -> tuple[str, Vector]:
    name, dtype, shape, offset = _entry(entry, source)
    nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    if offset + nbytes > len(region):
        raise CheckpointError(f"{source}: tensor {name!r} overruns the file")
    raw = bytearray(region[offset : offset + nbytes])  # writable: torch.frombuffer warns otherwise
    flat = torch.frombuffer(raw, dtype=dtype) if nbytes else torch.empty(0, dtype=dtype)
    return name, flat.reshape(shape)


def decode_state(data: bytes, *, source: str) -> PeerState:
    """Parse checkpoint bytes; CheckpointError (naming ``source``) on any defect."""
    header, region = _header(data, source)
    tensors = dict(_tensor(e, region, source) for e in _list(header.get("tensors"), source))
    counters, meta, round_ = header.get("counters"), header.get("meta"), header.get("round")
    if not isinstance(round_, int) or "params" not in tensors:
        raise CheckpointError(f"{source}: header lacks the round or the params tensor")
    if not isinstance(counters, dict) or not all(isinstance(v, int) for v in counters.values()):
        raise CheckpointError(f"{source}: counters are not a map of ints")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{source}: meta is not a map of strings")
    params = tensors.pop("params")
    return PeerState(round=round_, params=params, tensors=tensors, counters=counters, meta=meta)


def _list(value: object, source: str) -> list[object]:
    if not isinstance(value, list):
        raise CheckpointError(f"{source}: header has no tensor list")
    return value


class CheckpointStore:
    """The checkpoints of one peer in one directory: ``round-0000000042.ckpt``, newest two kept."""

    def __init__(self, directory: Path, *, keep: int = 2) -> None:
        if keep < 1:
            raise CheckpointError(f"keep={keep}: expected at least 1")
        self.directory = Path(directory)
        self.keep = keep
        self._remove_temp_files()

    def paths(self) -> list[Path]:
        """Checkpoint files, newest round first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"round-*{_SUFFIX}"), reverse=True)

    def save(self, state: PeerState) -> Path:
        """Write ``state`` atomically; returns the final path."""
        final = self.directory / f"round-{state.round:010d}{_SUFFIX}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(final, lambda out: write_state(state, out), tmp_prefix=_TMP_PREFIX)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {final}: {exc}") from exc
        for old in self.paths()[self.keep :]:
            with contextlib.suppress(OSError):
                old.unlink()
        log.debug("checkpoint of round %d written to %s", state.round, final)
        return final

    def load(self, path: Path) -> PeerState:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        return decode_state(data, source=str(path))

    def load_latest(self) -> PeerState | None:
        """The newest intact checkpoint; None if there is none at all.

        A defective file is renamed ``*.corrupt`` (kept for inspection, never pruned into the
        last good one's place) and the one before it is tried; CheckpointError if every file
        is defective.
        """
        self._remove_temp_files()
        problems = []
        for path in self.paths():
            try:
                return self.load(path)
            except CheckpointError as exc:
                log.warning("%s; setting it aside and trying the previous checkpoint", exc)
                problems.append(str(exc))
                with contextlib.suppress(OSError):
                    path.rename(path.with_name(path.name + _CORRUPT))
        if problems:
            raise CheckpointError("no intact checkpoint: " + "; ".join(problems))
        return None

    def _remove_temp_files(self) -> None:
        if self.directory.is_dir():
            for stray in self.directory.glob(f"{_TMP_PREFIX}*.tmp"):
                log.info("removing %s, left by an interrupted checkpoint write", stray)
                with contextlib.suppress(OSError):
                    stray.unlink()


@dataclass(frozen=True, kw_only=True, eq=False)
class SavedModel:
    """A peer's model as its checkpoint keeps it: what an export needs to rebuild the module.

    ``params`` is the flat float32 vector (a plug-in module's floating state entries in
    ``state_dict()`` order, see :mod:`peer.tasks.module`), ``integer_buffers`` the module's
    other state entries by name (e.g. ``1.num_batches_tracked``), ``model_spec`` the configured
    model (``package.module:function[:key=value,...]`` or a built-in name; empty in checkpoints
    older than it), ``fingerprint`` the layout's wire fingerprint.
    """

    round: int
    params: torch.Tensor
    integer_buffers: Mapping[str, torch.Tensor]
    model_spec: str
    fingerprint: str


def read_model(path: Path) -> SavedModel:
    """The model in the checkpoint file ``path``, or the newest intact one in the directory
    ``path`` (CheckpointError if there is none)."""
    path = Path(path)
    if path.is_dir():
        state = CheckpointStore(path).load_latest()
        if state is None:
            raise CheckpointError(f"{path}: no checkpoint in this directory")
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
        state = decode_state(data, source=str(path))
    buffers = {
        name.removeprefix("local."): tensor
        for name, tensor in state.tensors.items()
        if name.startswith("local.")
    }
    return SavedModel(
        round=state.round,
        params=state.params,
        integer_buffers=buffers,
        model_spec=state.meta.get("model_spec", ""),
        fingerprint=state.meta.get("model", ""),
    )
