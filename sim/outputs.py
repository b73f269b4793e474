"""Run outputs written so that nothing half-written is ever left in the output directory.

Everything goes to a hidden staging directory next to DIR; :meth:`RunWriter.commit` moves each
file into DIR with an atomic rename, and an error or Ctrl-C before that removes the staging
directory. DIR itself is only created at commit; missing parents of DIR are created at once
(and removed again if nothing is committed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from protocol.errors import ConfigError

__all__ = ["RunWriter", "write_json"]


def write_json(path: Path, data: Mapping[str, object]) -> None:
    """Pretty JSON with a trailing newline; NaN is refused (callers map it to null first)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _make_parents(parent: Path) -> list[Path]:
    """Create ``parent`` and its missing ancestors; return those created, outermost first."""
    missing = [p for p in (parent, *parent.parents) if not p.exists()][::-1]
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot create output parent {str(parent)!r}: {reason}") from exc
    if not parent.is_dir():
        raise ConfigError(f"output parent {str(parent)!r} is not a directory")
    return missing


class RunWriter:
    """Staging area for one run's files; use as a context manager and call :meth:`commit`."""

    def __init__(self, out: Path) -> None:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"output {str(out)!r} exists and is not a directory")
        self.out = out
        parent = out.resolve().parent
        self._made = _make_parents(parent)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        self._rounds: IO[str] | None = None
        self._committed = False

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_rounds()
        if not self._committed:
            shutil.rmtree(self.staging, ignore_errors=True)
            for made in reversed(self._made):
                with contextlib.suppress(OSError):  # not empty: something else wrote there
                    made.rmdir()

    def path(self, name: str) -> Path:
        """Where to write ``name`` now; it reaches DIR at commit."""
        return self.staging / name

    def add_round(self, record: Mapping[str, object]) -> None:
        """Append one line to rounds.jsonl (flushed, so a long run can be watched in staging)."""
        if self._rounds is None:
            self._rounds = self.path("rounds.jsonl").open("w")
        self._rounds.write(json.dumps(record, allow_nan=False) + "\n")
        self._rounds.flush()

    def commit(self) -> Path:
        """Move every staged file into DIR (atomic per file) and drop the staging directory."""
        self._close_rounds()
        self.out.mkdir(parents=True, exist_ok=True)
        for item in sorted(self.staging.iterdir()):
            os.replace(item, self.out / item.name)
        self.staging.rmdir()
        self._committed = True
        return self.out

    def _close_rounds(self) -> None:
        if self._rounds is not None:
            self._rounds.close()
            self._rounds = None
