"""Accuracy against epsilon under local differential privacy (``--dp``): a table and a plot.

Runs the simulator on Fashion-MNIST (16 peers, ``random_regular:d=6``, Dirichlet alpha = 1 by
default) once without DP and once per noise multiplier in ``--sigmas``, all else equal, and writes
DIR/dp_accuracy.md (the table), DIR/dp_accuracy.png (accuracy against the epsilon spent so far,
and against rounds) and DIR/dp_accuracy.json (every run's records).

    .venv/bin/python bench/dp_accuracy.py --out runs/dp [--sigmas 0.3,1,3,10] [--clip 0.1]
        [--rounds 50] [--local-steps 10] [--model logreg] [--seed 0] [--threads 1]

Each run also prints its wall time; accuracy and epsilon do not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sim.config import SimConfig
from sim.plots import _pyplot
from sim.report import Record, run_and_report

Run = tuple[float | None, list[Record], dict[str, object]]
"""sigma (None: no DP), the run's records, its summary."""


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", type=Path, required=True)
    add("--sigmas", default="0.3,1,3,10", help="comma-separated noise multipliers")
    add("--clip", type=float, default=0.1)
    add("--delta", type=float, default=1e-5)
    add("--rounds", type=int, default=50)
    add("--model", default="logreg")
    add("--local-steps", type=int, default=10)
    add("--lr", type=float, default=0.05)
    add("--peers", type=int, default=16)
    add("--topology", default="random_regular:d=6")
    add("--partition", default="dirichlet:alpha=1")
    add("--eval-every", type=int, default=5)
    add("--seed", type=int, default=0)
    add("--threads", type=int, default=1)
    return parser.parse_args()


def _config(args: argparse.Namespace, sigma: float | None) -> SimConfig:
    dp = None if sigma is None else f"clip={args.clip:g},sigma={sigma:g},delta={args.delta:g}"
    return SimConfig(
        task="fmnist",
        model=args.model,
        peers=args.peers,
        topology=args.topology,
        partition=args.partition,
        rounds=args.rounds,
        local_steps=args.local_steps,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
        dp=dp,
    )


def _table(runs: list[Run], args: argparse.Namespace) -> list[str]:
    lines = [
        f"| sigma | noise std | epsilon (delta {args.delta:g}) | accuracy mean | worst peer "
        "| average model |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for sigma, records, _ in runs:
        final = records[-1]
        eps = final.get("dp_epsilon")
        lines.append(
            ("| no DP | 0 | inf " if sigma is None else f"| {sigma:g} | {sigma * args.clip:g} ")
            + ("" if eps is None else f"| {eps:.4g} ")
            + f"| {final['acc_mean']:.4f} | {final['acc_min']:.4f} | {final['acc_avg_model']:.4f} |"
        )
    return lines


def _plot(runs: list[Run], path: Path, title: str) -> None:
    plt = _pyplot()
    fig, (by_eps, by_round) = plt.subplots(1, 2, figsize=(11, 4.2))
    for sigma, records, _ in runs:
        rounds = [float(r["round"] or 0) for r in records]
        acc = [float(r["acc_mean"] or 0.0) for r in records]
        if sigma is None:
            by_eps.axhline(acc[-1], color="black", linestyle="--", label="no DP (final)")
            by_round.plot(rounds, acc, color="black", linestyle="--", label="no DP")
            continue
        eps = [float(r["dp_epsilon"] or 0.0) for r in records]
        label = f"sigma {sigma:g}"
        by_eps.plot(eps[1:], acc[1:], marker=".", label=label)
        by_round.plot(rounds, acc, label=label)
    by_eps.set(xscale="log", xlabel="epsilon spent so far (per peer)", ylabel="mean accuracy")
    by_round.set(xlabel="round", ylabel="mean accuracy")
    for axes in (by_eps, by_round):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = _args()
    torch.set_num_threads(args.threads)
    sigmas: list[float | None] = [None, *(float(s) for s in args.sigmas.split(","))]
    runs: list[Run] = []
    for sigma in sigmas:
        result = run_and_report(_config(args, sigma), plots=False)
        runs.append((sigma, result.records, result.summary))
        wall = result.summary["wall_s"]
        print(f"sigma {sigma}: {wall:.1f} s, final {result.records[-1]}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    title = (
        f"fmnist {args.model} n={args.peers} {args.topology} {args.partition}, "
        f"clip {args.clip:g}, {args.rounds} rounds x {args.local_steps} local steps"
    )
    table = _table(runs, args)
    (args.out / "dp_accuracy.md").write_text(f"{title}\n\n" + "\n".join(table) + "\n")
    _plot(runs, args.out / "dp_accuracy.png", title)
    dump = [{"sigma": s, "records": r, "privacy": m.get("privacy")} for s, r, m in runs]
    (args.out / "dp_accuracy.json").write_text(json.dumps(dump, indent=1) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
