"""Signature benchmark, not a test: what signing and verifying add to one raw frame.

A raw keyframe of the 1M-parameter MLP (784-1024-256-10: 1,068,810 float32, 4.3 MB) is encoded
once; then ``--repeat`` times each: sign (BLAKE3 of the encoded bytes, Ed25519 over the digest,
the signed bytes built) and verify (the unsigned bytes rebuilt, the signature checked). Prints the
median and the fastest run of each and exits 1 if a median misses the 2 ms target.

    .venv/bin/python bench/signing_speed.py [--repeat R] [--params N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from protocol.envelope import Envelope, decode_envelope, encode_envelope, sign_envelope
from protocol.frame import Frame
from protocol.signing import FRAME_DOMAIN, SigningKey, Trust, attach
from protocol.spec import Spec

MLP_1M = 784 * 1024 + 1024 + 1024 * 256 + 256 + 256 * 10 + 10
TARGET_MS = 2.0


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, fastest) wall time of ``fn`` in milliseconds."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs), min(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--params", type=int, default=MLP_1M)
    args = parser.parse_args(argv)
    values = np.random.default_rng(0).standard_normal(args.params).astype("<f4")
    frame = Frame(
        kind="key", seq=0, base=None, codec=Spec("raw"), n=args.params, payload=values.tobytes()
    )
    env = Envelope(swarm="bench", sender="p0", round=0, frame=frame, model="0123456789abcdef")
    key = SigningKey.generate()
    trust = Trust({"p0": key.public_bytes()})
    unsigned = encode_envelope(env)
    signed = sign_envelope(env, key)
    decoded = decode_envelope(signed, max_bytes=len(signed))

    def sign() -> bytes:
        return attach(unsigned, key.sign(FRAME_DOMAIN, unsigned))

    def verify() -> None:
        trust.verify_signed(decoded.sender, FRAME_DOMAIN, signed)

    results = {"sign": timed(sign, args.repeat), "verify": timed(verify, args.repeat)}
    encode = timed(lambda: encode_envelope(env), args.repeat)
    print(f"raw frame: {args.params:,} parameters, {len(signed):,} bytes signed")
    print(f"  encode (for scale)  median {encode[0]:6.2f} ms  fastest {encode[1]:6.2f} ms")
    failed = False
    for name, (median, fastest) in results.items():
        ok = median < TARGET_MS
        failed |= not ok
        print(
            f"  {name:<18}  median {median:6.2f} ms  fastest {fastest:6.2f} ms  "
            f"target < {TARGET_MS} ms: {'ok' if ok else 'MISSED'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
