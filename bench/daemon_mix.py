"""A daemon's mixing step, not a test: ``MixScratch.mix_mean`` for one model and its neighbours'
copies, for several chunk sizes (the last is the whole model in one piece). Prints the best of
``--repeat`` runs per chunk size; the default chunk is ``peer.runtime.gossip.MIX_CHUNK``.

    .venv/bin/python bench/daemon_mix.py [--params P] [--neighbours K] [--repeat R] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from peer.runtime.gossip import MIX_CHUNK, MixScratch
from protocol.mixing import mix_weights

CHUNKS = (1 << 16, MIX_CHUNK, 1 << 18)


def best_ms(scratch: MixScratch, x: torch.Tensor, copies: list[torch.Tensor], repeat: int) -> float:
    weights = mix_weights(torch.full((len(copies),), 1.0 / (len(copies) + 1)), x.dtype)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        scratch.mix_mean(x, x, weights, copies, gamma=1.0)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=_positive, default=1_000_120, help="model size")
    parser.add_argument("--neighbours", type=_positive, default=2, help="copies mixed")
    parser.add_argument("--repeat", type=_positive, default=30, help="runs per chunk size")
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads (a peer's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.params, generator=g)
    copies = [torch.randn(args.params, generator=g) for _ in range(args.neighbours)]
    one, five, _ = os.getloadavg()
    print(
        f"mix_mean of {args.params:,} parameters with {args.neighbours} neighbours, "
        f"{args.threads} thread(s), best of {args.repeat}; load {one:.1f}/{five:.1f} (1/5 min)"
    )
    for chunk in (*CHUNKS, args.params):
        ms = best_ms(MixScratch(x, chunk=chunk), x, copies, args.repeat)
        label = "whole" if chunk >= args.params else f"{chunk:,}"
        default = " (MIX_CHUNK)" if chunk == MIX_CHUNK else ""
        print(f"  chunk {label:>9}{default}: {ms:.2f} ms")


if __name__ == "__main__":
    main()
