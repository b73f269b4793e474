"""A peer's peak RSS is its own, not that of the process that started it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from peer.runtime.runtime import peak_rss_mb


def test_the_peak_is_read_from_vmhwm(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 9000000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1 kB\n")
    assert peak_rss_mb(status) == 200.0


def test_without_vmhwm_ru_maxrss_stands_in(tmp_path: Path) -> None:
    assert peak_rss_mb(tmp_path / "absent") > 0


def test_a_child_of_a_large_process_reports_its_own_peak() -> None:
    """ru_maxrss survives fork and exec: the child reported its parent's size."""
    ballast = bytearray(300 * 2**20)  # this process: 300 MB more than the child will need
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # resident, not just reserved
    code = "from peer.runtime.runtime import peak_rss_mb; print(peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < peak_rss_mb() - 200
    del ballast
