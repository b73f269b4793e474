"""Helpers shared by the ``rumor up`` tests: what it left running, and how it refuses bad flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peer import cli

__all__ = ["processes_mentioning", "up_refusal"]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (peers and the broker name their run dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


def up_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """``rumor up`` with ``argv``: asserts it exits 2 with one line of error and launches (or
    writes) nothing; returns that line."""
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        cli.main(["up", "--out", str(out), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rumor up: error: "), err
    assert len(err.splitlines()) == 1
    assert not out.exists(), "something was launched (or written) for a swarm that cannot run"
    return err
