"""Simulator speed at the round loop's limit and at scale, not a test.

A. Workload A: 100 peers, random 4-regular graph, Fashion-MNIST split Dirichlet(0.1), logistic
   regression, batch 32, lr 0.1, one local step per round, 100 rounds (vector engine). Prints
   peer-updates per second over the 100 rounds (after a warm-up round; the held-out evaluation
   is left out: it runs once, after the timed rounds), the best of ``--repeats`` runs, and the
   wall time per phase of a profiled run (``rumor sim --profile``'s split). Issue target:
   >= 40,000 peer-updates/s with 2 threads.
B. 100,000 peers x 100 rounds of the ``synthetic`` task (random 4-regular graph, evaluated once
   at the end), in a child process so that its peak memory is its own: seconds in all (build,
   rounds, evaluation) and peak RSS per simulated peer. Issue target: under 5 minutes.

    .venv/bin/python bench/sim_scale.py [--threads 2] [--only A|B] [--peers N] [--rounds R]
        [--floor]

``--floor`` adds the cost of A's unavoidable kernels, each timed alone (the minibatch gather,
the two batched products, the fused exact mixing and publish steps): the speed a round cannot
beat with these kernels.

Every line says what was measured, with the machine's load average before and after: timings on
a shared machine mean little. Exits 1 if a target is missed on a full-size run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from peer.runtime.runtime import peak_rss_mb
from peer.tasks.learner import _gather
from protocol.errors import ConfigError
from sim import kernels
from sim.config import SimConfig
from sim.engines.vector import VectorEngine
from sim.profile import format_profile
from sim.runner import Simulation

WORKLOAD_A = SimConfig(
    task="fmnist",
    model="logreg",
    topology="random_regular:d=4",
    peers=100,
    partition="dirichlet:alpha=0.1",
    batch_size=32,
    lr=0.1,
    local_steps=1,
    rounds=100,
)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} (1/5 min) on {os.cpu_count()} cpus"


def timed_rounds(config: SimConfig, *, profile: bool = False) -> tuple[float, Simulation]:
    """Seconds of ``config.rounds`` rounds after one warm-up round (the final, evaluated round
    is run after the clock stops)."""
    sim = Simulation(replace(config, rounds=config.rounds + 2, eval_every=10**6, profile=profile))
    run = sim.run()
    next(run)
    start = time.perf_counter()
    for _ in range(config.rounds):
        next(run)
    elapsed = time.perf_counter() - start
    return elapsed, sim


def workload_a(repeats: int, rounds: int) -> float | None:
    config = replace(WORKLOAD_A, rounds=rounds)
    before = _load()
    try:
        best = min(timed_rounds(config)[0] for _ in range(repeats))
    except ConfigError as err:  # Fashion-MNIST not installed
        print(f"A: skipped ({err})")
        return None
    rate = config.peers * config.local_steps * rounds / best
    print(
        f"A: workload A (100 peers, fmnist logreg, random_regular:d=4, {rounds} rounds): "
        f"{rate:,.0f} peer-updates/s, best of {repeats} ({1e3 * best / rounds:.2f} ms/round; "
        f"{torch.get_num_threads()} threads; {before} before, {_load()} after; target >= 40,000)"
    )
    _, sim = timed_rounds(config, profile=True)
    print("A: " + format_profile(sim.timer.summary()).replace("\n", "\nA: "))
    return rate


def _best_ms(run: Callable[[int], object], repeats: int = 20) -> float:
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        run(repeat)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def floor() -> None:
    """Workload A's unavoidable work, each piece alone (best of 20): what a round cannot beat
    with these kernels. Train: the minibatch gather (fresh rows each time, from the uint8
    pixels as training gathers them) and the two batched products of logistic regression;
    then the raw codec's publish step and the exact mixing, as the CPU's fused kernels run
    them (one pass each)."""
    sim = Simulation(WORKLOAD_A)
    run = sim.run()
    next(run)  # one round: the engine's mixer now holds A's receivers and weights
    trainer, engine = sim.task.trainer, sim.engine
    assert trainer is not None
    assert isinstance(engine, VectorEngine)
    terms = engine._mixer._rows  # private, read by this bench only
    assert terms is not None
    data, n, batch = trainer.data, WORKLOAD_A.peers, WORKLOAD_A.batch_size
    rows = [  # a fresh minibatch each time, as each round draws, so not in cache
        (data.offsets[:n].view(n, 1) + trainer.indices(r)[:, 0]).reshape(-1) for r in range(20)
    ]
    x = _gather(data, rows[0]).clone()
    params = engine.params()
    classes, dim = data.num_classes, data.dim  # logistic regression: [classes, dim] then bias
    w = params[:, : classes * dim].reshape(n, classes, dim).contiguous()
    b = params[:, classes * dim :].reshape(n, classes, 1).contiguous()
    xb = x.view(n, batch, -1)
    z = torch.baddbmm(b, w, xb.transpose(1, 2))
    gw = torch.empty_like(w)
    models, copies = params.clone(), engine.x_hat.clone()
    parts = {
        "gather": _best_ms(lambda r: _gather(data, rows[r])),
        "forward": _best_ms(lambda _: torch.baddbmm(b, w, xb.transpose(1, 2))),
        "backward": _best_ms(lambda _: gw.baddbmm_(z, xb, beta=0.0)),
        "publish": _best_ms(lambda _: kernels.publish_raw(copies, models)),
        "mix": _best_ms(
            lambda _: kernels.mix_rows(
                models, copies, terms.indptr, terms.senders, terms.weights, gamma=1.0
            )
        ),
    }
    total = sum(parts.values())
    print(
        "floor: "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in parts.items())
        + f"; in all {total:.2f} ms a round = "
        f"{n / total * 1e3:,.0f} peer-updates/s at best ({torch.get_num_threads()} threads, "
        f"{_load()})"
    )


def scale_child(peers: int, rounds: int, device: str) -> dict[str, object]:
    """Run B in this process; return its figures."""
    config = SimConfig(
        task="synthetic",
        topology="random_regular:d=4",
        peers=peers,
        rounds=rounds,
        eval_every=rounds,
        device=device,
        profile=True,
    )
    start = time.perf_counter()
    sim = Simulation(config)
    built = time.perf_counter() - start
    final = list(sim.run())[-1]
    elapsed = time.perf_counter() - start
    peak = peak_rss_mb() * 2**20  # VmHWM: ru_maxrss would carry the parent's size over exec
    summary = sim.timer.summary()
    phases = summary["phases"]
    assert isinstance(phases, dict)
    return {
        "seconds": elapsed,
        "build_s": built,
        "rounds_s": elapsed - built,
        "evaluate_s": phases["evaluate"]["total_s"],
        "peak_rss_bytes": peak,
        "acc": float(final.acc_mean or 0.0),
        "profile": summary,
    }


def scale(peers: int, rounds: int, threads: int | None, device: str) -> float:
    before = _load()
    command = [sys.executable, __file__, "--child", str(peers), str(rounds), "--device", device]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"B: failed ({last})")
        return float("inf")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    per_peer = figures["peak_rss_bytes"] / peers
    print(
        f"B: synthetic {peers:,} peers x {rounds} rounds (random_regular:d=4, evaluated once): "
        f"{figures['seconds']:.1f} s in all ({figures['build_s']:.1f} s to build, "
        f"{figures['evaluate_s']:.1f} s evaluating; final acc {figures['acc']:.3f}); peak RSS "
        f"{figures['peak_rss_bytes'] / 2**20:,.0f} MiB = {per_peer / 1024:.1f} KiB per peer "
        f"({before} before, {_load()} after; target < 300 s for 100,000 x 100)"
    )
    print("B: " + format_profile(figures["profile"]).replace("\n", "\nB: "))
    return float(figures["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--only", choices=("A", "B"), help="run one of the two")
    parser.add_argument("--peers", type=int, default=100_000, help="B's peers (default 100,000)")
    parser.add_argument("--rounds", type=int, default=100, help="rounds of A and B (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="A's runs, best kept (default 3)")
    parser.add_argument("--device", default="cpu", help="B's device (default cpu)")
    parser.add_argument(
        "--floor", action="store_true", help="also time A's unavoidable kernels, each alone"
    )
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("threads", "peers", "rounds", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.floor and args.only == "B":
        parser.error("--floor times workload A's kernels: it goes with A, not --only B")
    if args.floor and not kernels.AVAILABLE:
        parser.error("--floor times the fused kernels, which need Numba: pip install 'rumor[sim]'")
    torch.set_num_threads(args.threads)
    if args.child:
        peers, rounds = args.child
        print(json.dumps(scale_child(peers, rounds, device=args.device)))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {_load()}")
    full = args.rounds == 100
    missed = []
    if args.only in (None, "A"):
        rate = workload_a(args.repeats, args.rounds)
        if args.floor and rate is not None:
            floor()
        if full and rate is not None and rate < 40_000:
            missed.append("A >= 40,000 peer-updates/s")
    if args.only in (None, "B"):
        seconds = scale(args.peers, args.rounds, args.threads, args.device)
        if seconds == float("inf"):
            missed.append("B did not run")
        elif full and args.peers == 100_000 and seconds >= 300:
            missed.append("B 100,000 x 100 < 300 s")
    if missed:
        print("missed: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
