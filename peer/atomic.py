"""Writing a file so that readers see the old bytes or the new, never half of them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(final: Path, data: bytes, *, tmp_prefix: str) -> None:
    """Temp file in the same directory, fsync, rename over ``final``, fsync the directory.

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
