"""Writing a file so that readers see the old bytes or the new, never half of them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["write_atomically"]


def write_atomically(
    final: Path, data: bytes | Callable[[IO[bytes]], None], *, tmp_prefix: str
) -> None:
    """Temp file in the same directory, fsync, rename over ``final``, fsync the directory.

    ``data``: the bytes, or a function that writes them to the stream it is given (a large
    file then never has to be whole in memory).

    Raises OSError; the temp file never outlives a failure.

    >>> d = Path(tempfile.mkdtemp())
    >>> write_atomically(d / "x", b"1", tmp_prefix=".x.")
    >>> (d / "x").read_bytes(), sorted(p.name for p in d.iterdir())
    (b'1', ['x'])
    """
    directory = final.parent if str(final.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            if callable(data):
                data(stream)
            else:
                stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
