"""The simulator on one GPU, as one command; not a test.

1. Logistic regression on Fashion-MNIST (iid), 10,000 peers, random 4-regular graph, batch 32,
   one local step per round: peer-steps per second of whole rounds (local SGD, CHOCO publish,
   mixing, bookkeeping; the held-out evaluation is left out). Issue target: >= 1,000,000.
2. The same with the MLP 784-64-10. Issue target: >= 400,000.
3. 1,000,000 peers x 100 rounds of the ``synthetic`` task (random 4-regular graph, evaluated once
   at the end): seconds in all, building included. Issue target: under 2 minutes.

Each line also gives the per-phase split of the timed rounds (``rumor sim --profile``; the
profiled run waits for the GPU at each phase boundary, so it is timed separately from the rate).

    .venv/bin/python bench/gpu.py                 # on the GPU machine (--device cuda)
    .venv/bin/python bench/gpu.py --tiny --device cpu   # a smoke run of the same code on CPU

``--tiny`` shrinks every size (100 peers, 2,000 peers for item 3, 5 rounds) so the script can be
checked anywhere. Fashion-MNIST is read from its usual place or ``--data-path``; without it
items 1 and 2 print "skipped". Exits 1 if a target is missed on a full-size run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch

from protocol.errors import ConfigError
from sim.config import SimConfig
from sim.device import device_sync, resolve_device
from sim.runner import Simulation

TARGETS = {"logreg": 1_000_000.0, "mlp": 400_000.0}


def _describe(device: torch.device) -> str:
    if device.type != "cuda":
        return f"cpu, {torch.get_num_threads()} threads"
    return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"


def _rate(config: SimConfig, rounds: int, device: torch.device) -> tuple[float, str]:
    """Peer-steps/s over ``rounds`` rounds after two warm-up rounds, and the profiled split."""
    sim = Simulation(replace(config, rounds=rounds + 3, eval_every=10**6))
    run = sim.run()
    next(run)
    next(run)
    device_sync(device)
    start = time.perf_counter()
    for _ in range(rounds):
        next(run)
    device_sync(device)
    rate = config.peers * config.local_steps * rounds / (time.perf_counter() - start)
    profiled = Simulation(replace(config, rounds=rounds + 1, eval_every=10**6, profile=True))
    for _ in zip(range(rounds), profiled.run(), strict=False):
        pass
    phases = profiled.timer.summary()["phases"]
    assert isinstance(phases, dict)
    split = ", ".join(
        f"{name} {row['per_round_ms']:.2f}" for name, row in phases.items() if row["total_s"] > 0
    )
    return rate, f"ms/round: {split}"


def models(args: argparse.Namespace, device: torch.device) -> list[str]:
    missed = []
    peers = 100 if args.tiny else 10_000
    rounds = 5 if args.tiny else 20
    for name, model in (("logreg", "logreg"), ("mlp", "mlp:hidden=64")):
        config = SimConfig(
            task="fmnist",
            model=model,
            topology="random_regular:d=4",
            peers=peers,
            batch_size=32,
            local_steps=1,
            lr=0.05,
            device=args.device,
            data_path=args.data_path,
        )
        try:
            rate, split = _rate(config, rounds, device)
        except ConfigError as err:  # Fashion-MNIST not installed
            print(f"{name}: skipped ({err})")
            continue
        target = TARGETS[name]
        print(
            f"{name} fmnist {peers:,} peers ({_describe(device)}): {rate:,.0f} peer-steps/s "
            f"over {rounds} rounds (target >= {target:,.0f}); {split}"
        )
        if not args.tiny and rate < target:
            missed.append(f"{name} >= {target:,.0f}")
    return missed


def million(args: argparse.Namespace, device: torch.device) -> list[str]:
    peers = 2_000 if args.tiny else 1_000_000
    rounds = 5 if args.tiny else 100
    config = SimConfig(
        task="synthetic",
        topology="random_regular:d=4",
        peers=peers,
        rounds=rounds,
        eval_every=rounds,
        device=args.device,
        profile=True,
    )
    start = time.perf_counter()
    sim = Simulation(config)
    built = time.perf_counter() - start
    final = list(sim.run())[-1]
    device_sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    memory = f"; peak GPU memory {peak / 2**30:.1f} GiB" if peak else ""
    print(
        f"synthetic {peers:,} peers x {rounds} rounds ({_describe(device)}): {elapsed:.1f} s in "
        f"all ({built:.1f} s to build; final acc {final.acc_mean:.3f}){memory} (target < 120 s)"
    )
    return [] if args.tiny or elapsed < 120 else ["1,000,000 x 100 < 120 s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:K, cpu or auto")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run anywhere")
    parser.add_argument("--data-path", help="directory with the Fashion-MNIST IDX files")
    parser.add_argument("--only", choices=("models", "million"), help="run one part")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except ConfigError as err:
        print(f"bench/gpu.py: {err}", file=sys.stderr)
        return 2
    print(f"device: {_describe(device)}")
    missed = []
    if args.only in (None, "models"):
        missed += models(args, device)
    if args.only in (None, "million"):
        missed += million(args, device)
    if missed:
        print("missed: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
