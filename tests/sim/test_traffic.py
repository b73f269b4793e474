"""Frame sizes: the sizes kept for rounds where every peer publishes alike are the computed ones."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.spec import Spec
from sim.traffic import Traffic


def _traffic() -> Traffic:
    return Traffic(n=50, delta_payload=7, model="0" * 16, codec=Spec("sign"), meta={"loss": 0.0})


@pytest.mark.parametrize("seq", [0, 1, 127, 128, 129, 255, 256, 257, 65535, 65536, 65537])
def test_kept_uniform_sizes_equal_the_computed_ones_across_msgpack_widths(seq: int) -> None:
    """Rounds and seqs on both sides of each msgpack integer width, keyframes and deltas."""
    traffic, n = _traffic(), 300  # names p0 .. p299: three name lengths
    publish = np.ones(n, dtype=bool)
    seqs = np.full(n, seq, dtype=np.int64)
    for key in (True,) if seq == 0 else (False, True):  # seq 0 is always a keyframe
        keys = np.full(n, key)
        for round in (seq, seq + 1):
            got = traffic.frame_sizes(round=round, seqs=seqs, publish=publish, key=keys)
            again = traffic.frame_sizes(round=round, seqs=seqs, publish=publish, key=keys)
            fresh = _traffic()._frame_sizes(round=round, seqs=seqs, publish=publish, key=keys)
            assert again is got
            assert not got.flags.writeable
            assert got.tolist() == fresh.tolist()
            assert len(set(got.tolist())) == 3


def test_rounds_where_peers_differ_are_computed_each_time() -> None:
    traffic, n = _traffic(), 10
    seqs = np.arange(n, dtype=np.int64) * 40  # seqs of several widths
    publish = np.ones(n, dtype=bool)
    publish[3] = False
    keys = seqs % 80 == 0
    got = traffic.frame_sizes(round=500, seqs=seqs, publish=publish, key=keys)
    assert got[3] == 0
    assert got.flags.writeable
    assert (
        got.tolist()
        == _traffic()._frame_sizes(round=500, seqs=seqs, publish=publish, key=keys).tolist()
    )
    assert not traffic._uniform
