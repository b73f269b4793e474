"""Benchmark: one failure scenario on the simulator and on a real swarm, side by side.

The scenario of README "Failures on real swarms": 8 peers, ring, Fashion-MNIST logistic
regression, Dirichlet(0.5) partition, 100 rounds, seed 0, under (a) no failure, (b) ``--crash
2@30-60``, (c) ``--drop 0.2``, (d) ``--partition-window 40-70``, each run by ``rumor sim`` and by
``rumor up`` with the same flags; then a real-only (e) ``--broker-outage 40-50``. Prints each
run's final mean accuracy, the real-minus-sim gap, and the outage's cost against (a); writes every
run directory and one ``rumor compare`` plot per scenario under --out.

    python bench/sim_vs_real.py --out runs/sim-vs-real
    python bench/sim_vs_real.py --out /tmp/svr --rounds 20 --only b   # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SCENARIOS = {
    "a": [],
    "b": ["--crash", "2@30-60"],
    "c": ["--drop", "0.2"],
    "d": ["--partition-window", "40-70"],
}
OUTAGE = ["--broker-outage", "40-50", "--round-timeout", "3"]


def _common(rounds: int, seed: int) -> list[str]:
    return [
        "--peers", "8", "--topology", "ring", "--rounds", str(rounds), "--task", "fmnist",
        "--model", "logreg", "--partition", "dirichlet:alpha=0.5", "--seed", str(seed),
    ]  # fmt: skip


def _rumor(*argv: str) -> None:
    command = [sys.executable, "-m", "peer", "--log-level", "WARNING", *argv]
    print("$ rumor " + " ".join(argv), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def _final(run: Path) -> float:
    lines = (run / "rounds.jsonl").read_text().splitlines()
    value = json.loads(lines[-1])["acc_mean"]
    assert isinstance(value, float)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="abcde", help="scenarios to run (default abcde)")
    args = parser.parse_args()
    common = _common(args.rounds, args.seed)
    finals: dict[str, float] = {}
    for name, flags in SCENARIOS.items():
        if name not in args.only:
            continue
        sim, up = args.out / f"{name}-sim", args.out / f"{name}-up"
        _rumor("sim", *common, *flags, "--quiet", "--out", str(sim))
        _rumor("up", *common, *flags, "--out", str(up))
        _rumor("compare", str(sim), str(up), "--out", str(args.out / f"{name}.png"))
        finals[f"{name}-sim"], finals[f"{name}-up"] = _final(sim), _final(up)
    if "e" in args.only:
        outage = args.out / "e-up"
        _rumor("up", *common, *OUTAGE, "--out", str(outage))
        finals["e-up"] = _final(outage)
    print(f"\n{'scenario':<10} {'sim':>8} {'real':>8} {'real-sim':>9}")
    for name in SCENARIOS:
        if f"{name}-up" in finals:
            sim_acc, real = finals[f"{name}-sim"], finals[f"{name}-up"]
            print(f"{name:<10} {sim_acc:8.4f} {real:8.4f} {100 * (real - sim_acc):+8.2f}pt")
    if "e-up" in finals:
        line = f"e outage   {'':>8} {finals['e-up']:8.4f}"
        if "a-up" in finals:
            line += f"  cost vs (a) real: {100 * (finals['a-up'] - finals['e-up']):.2f}pt"
        print(line)


if __name__ == "__main__":
    main()
