"""Reading IDX files (the MNIST family's format) without holding a file twice in memory.

An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, then
one uint32 per dimension) followed by the data. Only unsigned bytes (type 0x08) occur in these
datasets. Files may be gzipped; that is detected from the content, not the name.

A file is always decompressed in 1 MiB slices straight into its destination, never as one
``bytes`` object: :func:`read_idx` fills one preallocated uint8 tensor (cached per process, keyed
by path, size and mtime, because simulator sweeps reload the same files; :func:`clear_cache`
drops it), and :func:`scan_images` streams an image file once, keeping only chosen rows.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import math
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import torch

from peer.tasks.errors import DataError, DatasetMissing

__all__ = ["clear_cache", "image_count", "pixel_stats", "read_idx", "scan_images", "standardise_"]

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_SLICE = 1 << 20
"""Bytes per read: a gzip read of n bytes makes an n-byte temporary before copying it out."""


@contextlib.contextmanager
def _open_idx(path: Path, ndim: int) -> Iterator[tuple[io.BufferedIOBase, tuple[int, ...]]]:
    """The stream positioned after the header, and the header's dimensions."""
    try:
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(path.open("rb"))
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stream: io.BufferedIOBase = (
                stack.enter_context(gzip.GzipFile(fileobj=raw)) if gzipped else raw
            )
            yield stream, _header(path, stream.read(4 + 4 * ndim), ndim)
    except FileNotFoundError as exc:
        raise DatasetMissing(f"{path}: no such file") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def _header(path: Path, head: bytes, ndim: int) -> tuple[int, ...]:
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(head)} bytes)")
    zero, dtype, got_ndim = struct.unpack(">HBB", head[:4])
    if zero != 0 or dtype != _UBYTE:
        raise DataError(
            f"{path}: bad IDX magic 0x{head[:4].hex()}; expected 0x0000{_UBYTE:02x}{ndim:02x}"
        )
    if got_ndim != ndim:
        raise DataError(f"{path}: IDX file has {got_ndim} dimension(s), expected {ndim}")
    dims: tuple[int, ...] = struct.unpack(f">{ndim}I", head[4:])
    if math.prod(dims) == 0:
        raise DataError(f"{path}: header dims {list(dims)} hold no data")
    return dims


def _fill(stream: io.BufferedIOBase, buf: memoryview) -> int:
    """Read into ``buf`` until it is full or the data ends; the number of bytes read."""
    got = 0
    while got < len(buf):
        n = stream.readinto(buf[got : got + _SLICE])
        if not n:
            break
        got += n
    return got


def _check_size(stream: io.BufferedIOBase, path: Path, dims: tuple[int, ...], got: int) -> None:
    need = math.prod(dims)
    extra = 0
    if got == need:  # count what follows, a slice at a time
        while chunk := stream.read(_SLICE):
            extra += len(chunk)
    if got + extra != need:
        raise DataError(
            f"{path}: data has {got + extra} bytes, header dims {list(dims)} need {need}"
        )


def _bytes_of(t: torch.Tensor) -> memoryview:
    return t.numpy().data.cast("B")


def _read(path: Path, ndim: int) -> torch.Tensor:
    with _open_idx(path, ndim) as (stream, dims):
        out = torch.empty(dims, dtype=torch.uint8)
        _check_size(stream, path, dims, _fill(stream, _bytes_of(out)))
    return out


@functools.lru_cache(maxsize=8)
def _read_cached(path: Path, ndim: int, _size: int, _mtime_ns: int) -> torch.Tensor:
    return _read(path, ndim)


def read_idx(path: Path, *, ndim: int, cached: bool = True) -> torch.Tensor:
    """Decode an unsigned-byte IDX file (plain or gzipped) of ``ndim`` dimensions into uint8.

    A cached result is shared with the per-process cache: do not modify it in place.
    """
    if not cached:
        return _read(path, ndim)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise DatasetMissing(f"{path}: no such file") from exc
    return _read_cached(path.resolve(), ndim, st.st_size, st.st_mtime_ns)


def clear_cache() -> None:
    """Forget every file :func:`read_idx` decoded (a process that is done loading frees them)."""
    _read_cached.cache_clear()


def image_count(path: Path) -> int:
    """The number of images an image IDX file's header announces (the data is not read)."""
    with _open_idx(path, 3) as (_, dims):
        return dims[0]


def scan_images(path: Path, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stream an image IDX file [M, H, W] once, in slices of about 1 MiB.

    Returns the images at ``rows`` (any order, repeats allowed) as uint8 [len(rows), H * W] and
    the 256-bin histogram of every pixel in the file (int64). Memory: the result and one slice;
    the file is never whole in memory.
    """
    with _open_idx(path, 3) as (stream, dims):
        m, width = dims[0], dims[1] * dims[2]
        bad = rows[(rows < 0) | (rows >= m)]
        if bad.numel():
            raise DataError(f"{path}: row {int(bad[0])} asked for; the file has rows 0 to {m - 1}")
        order = torch.argsort(rows, stable=True)
        wanted = rows[order]
        out = torch.empty(rows.numel(), width, dtype=torch.uint8)
        hist = torch.zeros(256, dtype=torch.int64)
        per = max(1, _SLICE // width)
        buf = torch.empty(per, width, dtype=torch.uint8)
        got = 0
        for start in range(0, m, per):
            chunk = buf[: min(per, m - start)]
            n = _fill(stream, _bytes_of(buf)[: chunk.numel()])
            got += n
            if n < chunk.numel():
                break  # truncated: _check_size says so
            hist += torch.bincount(chunk.reshape(-1), minlength=256)
            lo, hi = torch.searchsorted(wanted, torch.tensor([start, start + len(chunk)])).tolist()
            out[order[lo:hi]] = chunk[wanted[lo:hi] - start]
        _check_size(stream, path, dims, got)
    return out, hist


def pixel_stats(counts: torch.Tensor) -> tuple[float, float]:
    """Mean and std of pixels scaled to [0, 1], exactly, from their 256-bin histogram.

    >>> pixel_stats(torch.bincount(torch.tensor([0, 255, 255, 0]), minlength=256))
    (0.5, 0.5)
    """
    counts = counts.to(torch.float64)
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean = float((counts * values).sum() / counts.sum())
    var = float((counts * (values - mean) ** 2).sum() / counts.sum())
    return mean, var**0.5


def standardise_(pixels: torch.Tensor, stats: tuple[float, float]) -> torch.Tensor:
    """Pixel values 0..255 (float) to ``(p / 255 - mean) / std``, in place; returns ``pixels``.

    Every loader goes through this one sequence of float32 operations, so two processes that
    convert the same rows get bitwise identical inputs however they sliced the work.

    >>> standardise_(torch.tensor([0.0, 255.0]), (0.5, 0.25)).tolist()
    [-2.0, 2.0]
    """
    mean, std = stats
    return pixels.mul_(1.0 / (255.0 * std)).sub_(mean / std)
