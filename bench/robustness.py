"""Every aggregation rule against every attack: the honest peers' accuracy, as one table.

Runs ``rumor sim`` on Fashion-MNIST (16 peers, ``random_regular:d=6``, Dirichlet alpha = 1,
300 rounds by default) once per (rule, attack, seed), ``--jobs`` at a time, each in its own
process with one torch thread, and writes DIR/robustness.md (honest peers' final mean accuracy,
mean over seeds, with the worst honest peer in brackets), DIR/robustness.json (every run's final
figures) and DIR/<rule>/<attack>/seed<S>/ (each run's own outputs). Runs already in DIR are
reused, so an interrupted table resumes where it stopped.

    .venv/bin/python bench/robustness.py --out runs/robustness [--seeds 0,1] [--jobs 2]
        [--attackers 0.125] [--topology random_regular:d=6] [--rounds 300]
        [--rules "mean;clip;clip:b=1,fade=false;trimmed_mean:b=2;median"]
        [--attacks "none;signflip;noise;alie;ipm;dissensus;labelflip"]

Accuracy does not depend on the machine (every run is seeded); wall time does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RULES = "mean;clip;clip:b=1,fade=false;trimmed_mean:b=2;median"
ATTACKS = "none;signflip;noise;alie;ipm;dissensus;labelflip"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", type=Path, required=True)
    add("--rules", default=RULES, help="';'-separated aggregator specs")
    add("--attacks", default=ATTACKS, help="';'-separated attack specs, or none")
    add("--attackers", type=float, default=0.125, help="fraction of peers attacking")
    add("--seeds", default="0,1")
    add("--topology", default="random_regular:d=6")
    add("--partition", default="dirichlet:alpha=1")
    add("--peers", type=int, default=16)
    add("--rounds", type=int, default=300)
    add("--eval-every", type=int, default=50)
    add("--jobs", type=int, default=2)
    return parser.parse_args()


def _folder(rule: str) -> str:
    return rule.replace(":", "_").replace(",", "_").replace("=", "")


def _run(args: argparse.Namespace, rule: str, attack: str, seed: int) -> dict[str, object]:
    out = args.out / _folder(rule) / _folder(attack) / f"seed{seed}"
    summary = out / "summary.json"
    if not summary.exists():
        command = [
            sys.executable, "-m", "peer", "sim", "--task", "fmnist", "--quiet", "--threads", "1",
            "--peers", str(args.peers), "--topology", args.topology,
            "--partition", args.partition, "--rounds", str(args.rounds),
            "--eval-every", str(args.eval_every), "--seed", str(seed),
            "--aggregator", rule, "--out", str(out),
        ]  # fmt: skip
        if attack != "none":
            name, _, params = attack.partition(":")
            command += ["--byzantine", f"{args.attackers:g}:attack={name}"]
            command[-1] += f",{params}" if params else ""
        done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        if done.returncode not in (0, 1) or not summary.exists():  # 1: diverged, with outputs
            raise SystemExit(f"{' '.join(command)} failed with exit status {done.returncode}")
    result = json.loads(summary.read_text())
    if result.get("diverged") is not None:  # an attack that blew the models up: no accuracy
        print(f"{rule:24s} {attack:12s} seed {seed}: diverged at round {result['diverged']}")
        return {"rule": rule, "attack": attack, "seed": seed, "honest": None, "worst": None}
    final = result["final"]
    honest = final.get("acc_honest_mean") or final["acc_mean"]
    worst = final.get("acc_honest_worst") or final["acc_min"]
    print(f"{rule:24s} {attack:12s} seed {seed}: honest {honest:.4f} (worst {worst:.4f})")
    return {"rule": rule, "attack": attack, "seed": seed, "honest": honest, "worst": worst}


def _table(results: list[dict[str, object]], rules: list[str], attacks: list[str]) -> str:
    lines = [
        "| rule | " + " | ".join(attacks) + " |",
        "|---|" + "---|" * len(attacks),
    ]
    for rule in rules:
        cells = []
        for attack in attacks:
            runs = [r for r in results if r["rule"] == rule and r["attack"] == attack]
            if any(r["honest"] is None for r in runs):
                cells.append("diverged")
                continue
            honest = statistics.fmean(float(r["honest"]) for r in runs)  # type: ignore[arg-type]
            worst = min(float(r["worst"]) for r in runs)  # type: ignore[arg-type]
            cells.append(f"{honest:.3f} ({worst:.2f})")
        lines.append(f"| `{rule}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _args()
    rules, attacks = args.rules.split(";"), args.attacks.split(";")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(rule, attack, seed) for seed in seeds for attack in attacks for rule in rules]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: _run(args, *job), jobs))
    table = _table(results, rules, attacks)
    (args.out / "robustness.md").write_text(table)
    (args.out / "robustness.json").write_text(json.dumps(results, indent=1))
    print(table)


if __name__ == "__main__":
    main()
