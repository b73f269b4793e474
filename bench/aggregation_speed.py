"""Aggregation benchmark, not a test: the cost of each rule per round, next to ``mean``.

One simulated round of aggregation for N peers with K in-neighbours each, on the batched form
the vector engine uses ([N, P] own copies, [N, K] weights, [N, K, P] neighbour copies), for
every rule of :func:`protocol.aggregation.aggregate`. Reports the median time per round of
``--repeat`` runs and the ratio to ``mean``. Random copies: the rules' cost does not depend on
the values (sorting and norms are data-independent passes).

    .venv/bin/python bench/aggregation_speed.py [--peers N] [--degree K] [--params P]
        [--repeat R] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from protocol.aggregation import aggregate
from protocol.mixing import mix_weights
from protocol.spec import parse_spec

RULES = ("mean", "clip", "clip:b=1,fade=false", "clip:tau=1.0", "trimmed_mean:b=1", "median")


def _inputs(
    peers: int, degree: int, params: int, *, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x_hat = torch.randn(peers, params, generator=g)
    copies = torch.randn(peers, degree, params, generator=g)
    weights = mix_weights(torch.full((peers, degree), 1.0 / (degree + 1)), torch.float32)
    return x_hat, weights, copies


def time_rule(
    rule: str, x_hat: torch.Tensor, weights: torch.Tensor, copies: torch.Tensor, *, repeat: int
) -> float:
    """Median seconds of one batched ``aggregate`` call (one warm-up call first)."""
    spec = parse_spec(rule)
    aggregate(spec, x_hat, weights, copies)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        aggregate(spec, x_hat, weights, copies)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=1024)
    parser.add_argument("--degree", type=int, default=6)
    parser.add_argument("--params", type=int, default=7850, help="logreg on 28x28, 10 classes")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x_hat, weights, copies = _inputs(args.peers, args.degree, args.params, seed=0)
    print(
        f"torch {torch.__version__}, {args.threads} threads; {args.peers} peers x "
        f"{args.degree} neighbours x {args.params:,} parameters"
    )
    base = time_rule("mean", x_hat, weights, copies, repeat=args.repeat)
    for rule in RULES:
        seconds = (
            base if rule == "mean" else time_rule(rule, x_hat, weights, copies, repeat=args.repeat)
        )
        print(f"{rule:>18}: {seconds * 1e3:9.1f} ms per round, {seconds / base:5.1f}x mean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
